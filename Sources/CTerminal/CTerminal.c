#include "CTerminal.h"

#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

// Written once before the handlers are installed, then only read (also by the handlers):
// a signal handler may read it safely, and tcsetattr is async-signal-safe.
static struct termios saved;
static int saved_fd = -1;
static volatile sig_atomic_t restored = 1;

void chat_terminal_restore(void) {
    if (restored) return;
    restored = 1;
    tcsetattr(saved_fd, TCSAFLUSH, &saved);
}

static void on_fatal_signal(int signal_number) {
    chat_terminal_restore();
    // Leave the cursor on a fresh line, then die of the signal as if nothing caught it.
    (void)!write(saved_fd, "\r\n", 2);
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = SIG_DFL;
    sigemptyset(&action.sa_mask);
    sigaction(signal_number, &action, NULL);
    raise(signal_number);
}

int chat_terminal_enter_raw(int fd) {
    struct termios raw;
    if (tcgetattr(fd, &saved) != 0) return -1;
    saved_fd = fd;
    raw = saved;
    raw.c_iflag &= ~(tcflag_t)(BRKINT | ICRNL | INPCK | ISTRIP | IXON);
    raw.c_cflag |= CS8;
    raw.c_lflag &= ~(tcflag_t)(ECHO | ICANON | IEXTEN | ISIG);
    raw.c_cc[VMIN] = 1;
    raw.c_cc[VTIME] = 0;
    int fatal[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT, SIGTERM, SIGHUP, SIGQUIT};
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = on_fatal_signal;
    sigemptyset(&action.sa_mask);
    for (unsigned i = 0; i < sizeof fatal / sizeof fatal[0]; i++) sigaction(fatal[i], &action, NULL);
    if (tcsetattr(fd, TCSAFLUSH, &raw) != 0) return -1;
    restored = 0;
    return 0;
}

void chat_terminal_size(int fd, int *columns, int *rows) {
    struct winsize size;
    if (ioctl(fd, TIOCGWINSZ, &size) == 0) {
        *columns = size.ws_col;
        *rows = size.ws_row;
    } else {
        *columns = 0;
        *rows = 0;
    }
}
