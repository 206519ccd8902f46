//go:build linux

package faults

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// The servers' clocks are bent by a small library of the suite's own,
// preloaded into each redis-server (LD_PRELOAD) and built from the C
// source below when a run needs it, with the host's C compiler (cc, or
// $CC). It intercepts clock_gettime, gettimeofday and time, which is how
// redis-server reads both of its clocks: the wall clock (mstime, ustime:
// the expiry of every key, the TIME command) and the monotonic one (its
// timers). It reads the host's clock through libc's clock_gettime (the
// vDSO), or through the system call before its constructor has looked
// that up.
//
// Debian's libfaketime (0.9.10) would do the same, but it cannot start
// Debian's redis-server: that one allocates with jemalloc, whose start
// reads the clock, and libfaketime's start allocates; redis-server hangs
// on jemalloc's lock before main (libfaketime issue #130, open). The
// suite's library allocates nothing.
//
// A Go program cannot be bent this way: the Go runtime reads the clock
// through the vDSO itself, not through libc (under libfaketime a Go
// program's time.Now stays true while the libc time() it calls through
// cgo is bent). The client processes' clocks are bent in the holders'
// reading of Until instead (see clientClock).

// clockShimSource is the preloaded library's C source.
const clockShimSource = `/* clockshift: preloaded (LD_PRELOAD) into a redis-server by the fault
 * suite of github.com/quorumlock/redsync (faults/clockfault_shim.go) to
 * bend its clocks.
 *
 * CLOCKSHIFT_RATE_PPB: how much faster than the host's the clocks run, in
 *   parts per billion (20000000: 2 % fast; -20000000: 2 % slow). Bends
 *   CLOCK_REALTIME and CLOCK_MONOTONIC and their variants alike, as a
 *   fast oscillator would. The monotonic clock's gain is counted from
 *   the moment the library was loaded, the wall clock's from
 *   CLOCKSHIFT_ANCHOR_NS (host CLOCK_REALTIME, in nanoseconds) when set:
 *   a restarted server then keeps the gain its clock had, as a machine's
 *   clock does when a process on it restarts.
 * CLOCKSHIFT_FILE: a file whose first 8 bytes are a signed offset in
 *   nanoseconds (host byte order) added to CLOCK_REALTIME only, as a step
 *   of the wall clock (NTP, an operator) would be; the suite keeps it
 *   mapped and stores to it atomically, and every read of the clock
 *   here loads it, so a jump takes effect at once.
 *
 * Intercepted: clock_gettime, gettimeofday, time. The host's clock is
 * read through the next clock_gettime (libc's, the vDSO) once the
 * constructor has looked it up, through the system call before. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

typedef int (*clock_fn)(clockid_t, struct timespec *);

static clock_fn host_clock;              /* set once by the constructor */
static int64_t rate_ppb;                 /* set once by the constructor */
static int64_t anchor_real, anchor_mono; /* host clocks when loaded */
static volatile int64_t *jump;           /* the mapped CLOCKSHIFT_FILE */

static int64_t host_ns(clockid_t id) {
	struct timespec ts;
	clock_fn f = __atomic_load_n(&host_clock, __ATOMIC_ACQUIRE);
	if (f == NULL || f(id, &ts) != 0)
		syscall(SYS_clock_gettime, id, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int is_realtime(clockid_t id) {
	return id == CLOCK_REALTIME || id == CLOCK_REALTIME_COARSE;
}

static int is_monotonic(clockid_t id) {
	return id == CLOCK_MONOTONIC || id == CLOCK_MONOTONIC_COARSE ||
	       id == CLOCK_MONOTONIC_RAW || id == CLOCK_BOOTTIME;
}

/* bent returns the bent reading of clock id, host being its host reading. */
static int64_t bent(clockid_t id, int64_t host) {
	int64_t anchor = is_realtime(id) ? anchor_real : anchor_mono;
	int64_t t = host + (int64_t)((__int128)(host - anchor) * rate_ppb / 1000000000);
	if (is_realtime(id) && jump != NULL)
		t += __atomic_load_n(jump, __ATOMIC_RELAXED);
	return t;
}

int clock_gettime(clockid_t id, struct timespec *ts) {
	if (!is_realtime(id) && !is_monotonic(id)) {
		clock_fn f = __atomic_load_n(&host_clock, __ATOMIC_ACQUIRE);
		return f != NULL ? f(id, ts) : syscall(SYS_clock_gettime, id, ts);
	}
	int64_t t = bent(id, host_ns(id));
	ts->tv_sec = t / 1000000000;
	ts->tv_nsec = t % 1000000000;
	return 0;
}

int gettimeofday(struct timeval *tv, void *tz) {
	int64_t t = bent(CLOCK_REALTIME, host_ns(CLOCK_REALTIME));
	(void)tz;
	tv->tv_sec = t / 1000000000;
	tv->tv_usec = (t % 1000000000) / 1000;
	return 0;
}

time_t time(time_t *out) {
	time_t s = bent(CLOCK_REALTIME, host_ns(CLOCK_REALTIME)) / 1000000000;
	if (out != NULL)
		*out = s;
	return s;
}

__attribute__((constructor)) static void clockshift_init(void) {
	const char *rate = getenv("CLOCKSHIFT_RATE_PPB");
	const char *path = getenv("CLOCKSHIFT_FILE");
	const char *anchor = getenv("CLOCKSHIFT_ANCHOR_NS");
	rate_ppb = rate != NULL ? strtoll(rate, NULL, 10) : 0;
	anchor_real = anchor != NULL && *anchor != '\0' ? strtoll(anchor, NULL, 10) : host_ns(CLOCK_REALTIME);
	anchor_mono = host_ns(CLOCK_MONOTONIC);
	if (path != NULL && *path != '\0') {
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd >= 0) {
			void *m = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 0);
			close(fd);
			if (m != MAP_FAILED)
				jump = (volatile int64_t *)m;
		}
	}
	__atomic_store_n(&host_clock, (clock_fn)dlsym(RTLD_NEXT, "clock_gettime"), __ATOMIC_RELEASE);
}
`

// errNoCompiler reports that no C compiler is there to build the clock
// shim.
var errNoCompiler = errors.New("faults: the clock faults need a C compiler (cc, or $CC) to build the library they preload into redis-server: install one with `apt-get install -y gcc`")

// compiler returns the C compiler to build the shim with.
func compiler() (string, error) {
	name := os.Getenv("CC")
	if name == "" {
		name = "cc"
	}
	path, err := exec.LookPath(name)
	if err != nil {
		return "", fmt.Errorf("%w (%v)", errNoCompiler, err)
	}
	return path, nil
}

// ClockFaultsAvailable reports whether the clock faults can run here: it
// returns nil when a C compiler is found, else an error that says how to
// install one.
func ClockFaultsAvailable() error {
	_, err := compiler()
	return err
}

// buildClockShim builds the shim into dir and returns its path.
func buildClockShim(dir string) (string, error) {
	cc, err := compiler()
	if err != nil {
		return "", err
	}
	src := filepath.Join(dir, "clockshift.c")
	lib := filepath.Join(dir, "clockshift.so")
	if err := os.WriteFile(src, []byte(clockShimSource), 0o644); err != nil {
		return "", err
	}
	out, err := exec.Command(cc, "-shared", "-fPIC", "-O2", "-Wall", "-o", lib, src, "-ldl").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("faults: building the clock shim with %s: %v\n%s", cc, err, strings.TrimSpace(string(out)))
	}
	return lib, nil
}
