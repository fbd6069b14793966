#ifndef C_SOCKETS_H
#define C_SOCKETS_H

/// accept4(2) with SOCK_NONBLOCK | SOCK_CLOEXEC: the connected socket, or -1 with errno set.
/// (Swift's Glibc module leaves out the GNU extensions; see CSockets.c.)
int c_sockets_accept(int listening);

/// pipe2(2) with O_NONBLOCK | O_CLOEXEC: 0, or -1 with errno set.
int c_sockets_pipe(int descriptors[2]);

/// The port a bound IPv4 or IPv6 socket has, or -1 with errno set (or an unknown family).
int c_sockets_local_port(int socket);

#endif
