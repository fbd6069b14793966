// accept4 and pipe2 are GNU extensions: declared only with _GNU_SOURCE, which must come
// before the first system header, so they are wrapped here rather than inline in the header
// (the header's includes would come from the already-built Glibc module).
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "CSockets.h"

int c_sockets_accept(int listening) {
    return accept4(listening, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
}

int c_sockets_pipe(int descriptors[2]) {
    return pipe2(descriptors, O_NONBLOCK | O_CLOEXEC);
}

int c_sockets_local_port(int socket) {
    struct sockaddr_storage address;
    socklen_t size = sizeof(address);
    if (getsockname(socket, (struct sockaddr *)&address, &size) != 0) return -1;
    switch (address.ss_family) {
    case AF_INET: return ntohs(((struct sockaddr_in *)&address)->sin_port);
    case AF_INET6: return ntohs(((struct sockaddr_in6 *)&address)->sin6_port);
    default: return -1;
    }
}
