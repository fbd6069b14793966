#ifndef C_TERMINAL_H
#define C_TERMINAL_H

/// Puts the terminal on `fd` in raw mode (no line buffering, no echo, no signals from
/// keys, no flow control; output processing stays on) and installs handlers that restore it
/// when the process dies of a crash signal (SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT) or is
/// told to stop (SIGTERM, SIGHUP, SIGQUIT), then let the signal take its course.
/// Returns 0, or -1 with errno set (e.g. `fd` is not a terminal).
int chat_terminal_enter_raw(int fd);

/// Restores the terminal as it was before `chat_terminal_enter_raw`; safe to call more
/// than once, and from a signal handler.
void chat_terminal_restore(void);

/// The terminal's size in columns and rows; 0 when unknown.
void chat_terminal_size(int fd, int *columns, int *rows);

#endif
