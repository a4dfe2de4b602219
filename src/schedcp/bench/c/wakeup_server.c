// SPDX-License-Identifier: GPL-2.0-only
/*
 * wakeup_server: a request/response latency benchmark for CPU schedulers.
 *
 * M message threads each own W worker threads. A message thread works in rounds: it hands
 * one request to each of its workers (stamping the time just before it wakes each one),
 * waits until all of them report completion, optionally "thinks" for -s microseconds, and
 * starts the next round. A worker, once woken, records its wakeup latency (the time from
 * the stamp to the moment it runs), burns a fixed amount of CPU time, and signals
 * completion. The message thread records each request's end-to-end latency: from the
 * stamp until it itself saw the completion, which includes its own wakeup.
 *
 * Both latencies are what a scheduler decides: where and how soon a woken thread runs,
 * and whether a busy CPU's current thread is preempted for it.
 *
 * Output: a human-readable summary, or with -j one JSON object on stdout.
 *
 * Build: gcc -Wall -Wextra -O2 -pthread -o wakeup_server wakeup_server.c -lm
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/*
 * Why futexes rather than a pthread condition variable: with a condvar the woken worker
 * must also re-acquire the mutex, which the waker may still hold, so one "wakeup" can be
 * two (wake on the condvar, block on the mutex, be woken again at unlock) and the
 * measurement would mix lock hand-off with the scheduler's wakeup path. A futex word per
 * worker wakes exactly that worker with one syscall and no lock, so the latency we measure
 * is the kernel's try-to-wake-up plus the scheduler's placement and preemption decisions.
 * The word is a sequence number, so a wake that arrives before the waiter sleeps is never
 * lost: FUTEX_WAIT returns at once when the word no longer holds the value last seen.
 *
 * Why a busy loop on CLOCK_THREAD_CPUTIME_ID rather than a calibrated loop: it consumes
 * exactly the requested amount of CPU time *received by this thread*, whatever the CPU's
 * speed, frequency or emulation (a loop calibrated once runs at different speeds under
 * QEMU's TCG as its translation cache warms, and on a different CPU than it was calibrated
 * on). Time the thread spends preempted is not counted, so contention stretches the
 * request's wall time, which is what the request latency should show. Reading this clock
 * is a real syscall (no vDSO), so a block of 512 dependent multiply-adds between reads keeps
 * most of the time in user space (about 60 % on our build host) while overshooting the
 * target by only one block (well under a microsecond natively, tens under emulation).
 */

#define NSEC_PER_SEC 1000000000ULL
#define NSEC_PER_USEC 1000ULL

#define MAX_MESSAGE_THREADS 256
#define MAX_WORKERS 256
#define MAX_THREADS_TOTAL 4096
#define MAX_RUNTIME_S 86400
#define MAX_CPU_US 10000000   /* 10 s of CPU per request */
#define MAX_SLEEP_US 10000000 /* 10 s of think time */

/* ---- log-linear histogram ------------------------------------------------------------ */

/*
 * Values (nanoseconds) below 2^SUB_BITS get one bucket each; above that every power-of-two
 * range [2^k, 2^(k+1)) is split into 2^SUB_BITS equal buckets, so a bucket is at most
 * 1/64 (1.6 %) of its value wide. Values of 2^MAX_BITS ns (about 18 minutes) and more
 * land in the last bucket; the exact maximum is kept separately. Memory is fixed:
 * 35 * 64 buckets of 8 bytes, about 18 KB per histogram.
 */
#define HIST_SUB_BITS 6U
#define HIST_SUB (1U << HIST_SUB_BITS)
#define HIST_MAX_BITS 40U
#define HIST_BUCKETS ((HIST_MAX_BITS - HIST_SUB_BITS + 1U) * HIST_SUB)

struct hist {
	uint64_t count;
	uint64_t max;
	uint64_t sum;
	uint64_t bucket[HIST_BUCKETS];
};

static unsigned int hist_index(uint64_t v)
{
	if (v < HIST_SUB)
		return (unsigned int)v;
	unsigned int msb = 63U - (unsigned int)__builtin_clzll(v);
	if (msb >= HIST_MAX_BITS)
		return HIST_BUCKETS - 1U;
	unsigned int shift = msb - HIST_SUB_BITS;
	return ((shift + 1U) << HIST_SUB_BITS) | (unsigned int)((v >> shift) & (HIST_SUB - 1U));
}

/* The largest value that falls into bucket i. */
static uint64_t hist_upper(unsigned int i)
{
	if (i < HIST_SUB)
		return i;
	unsigned int shift = (i >> HIST_SUB_BITS) - 1U;
	uint64_t lower = ((uint64_t)HIST_SUB + (i & (HIST_SUB - 1U))) << shift;
	return lower + (1ULL << shift) - 1U;
}

static void hist_add(struct hist *h, uint64_t v)
{
	h->bucket[hist_index(v)]++;
	h->count++;
	h->sum += v;
	if (v > h->max)
		h->max = v;
}

static void hist_merge(struct hist *into, const struct hist *from)
{
	for (unsigned int i = 0; i < HIST_BUCKETS; i++)
		into->bucket[i] += from->bucket[i];
	into->count += from->count;
	into->sum += from->sum;
	if (from->max > into->max)
		into->max = from->max;
}

/*
 * The value at rank ceil(count * permille / 1000): the upper edge of its bucket, capped at
 * the exact maximum, so p50 <= p90 <= p99 <= p999 <= max always holds and a percentile
 * errs high (never reports better latency than measured) by at most one bucket width.
 */
static uint64_t hist_percentile(const struct hist *h, uint64_t permille)
{
	if (h->count == 0)
		return 0;
	uint64_t rank = (h->count * permille + 999U) / 1000U;
	if (rank == 0)
		rank = 1;
	uint64_t seen = 0;
	for (unsigned int i = 0; i < HIST_BUCKETS; i++) {
		seen += h->bucket[i];
		if (seen >= rank) {
			uint64_t up = hist_upper(i);
			return up < h->max ? up : h->max;
		}
	}
	return h->max;
}

/* ---- shared state ---------------------------------------------------------------------- */

struct config {
	unsigned int message_threads;
	unsigned int workers;
	unsigned int runtime_s;
	unsigned int cpu_us;
	unsigned int sleep_us;
	bool json;
};

static struct config cfg = {
	.message_threads = 2,
	.workers = 4,
	.runtime_s = 10,
	.cpu_us = 1000,
	.sleep_us = 0,
	.json = false,
};

/* Set once by the main thread at the deadline; also the futex word think time sleeps on. */
static _Atomic uint32_t stop_flag;

/* Keeps the compute block from being optimised away. */
static volatile uint64_t compute_sink;

struct messenger;

struct worker {
	_Alignas(64) _Atomic uint32_t posted; /* futex word: sequence of the last request posted */
	_Atomic uint64_t stamp_ns;             /* CLOCK_MONOTONIC when it was posted */
	_Atomic uint32_t done;                 /* sequence of the last request completed */
	struct messenger *msg;
	pthread_t thread;
	struct hist wakeup;
};

struct messenger {
	_Alignas(64) _Atomic uint32_t completions; /* futex word: bumped by every completion */
	struct worker *workers;
	uint64_t *posted_at;
	bool *recorded;
	pthread_t thread;
	uint64_t requests;
	struct hist request;
};

static uint64_t now_ns(clockid_t clock)
{
	struct timespec ts;
	clock_gettime(clock, &ts);
	return (uint64_t)ts.tv_sec * NSEC_PER_SEC + (uint64_t)ts.tv_nsec;
}

static bool stopping(void)
{
	return atomic_load_explicit(&stop_flag, memory_order_acquire) != 0;
}

static void futex_wait(_Atomic uint32_t *word, uint32_t seen, const struct timespec *timeout)
{
	/* EAGAIN (the word moved on), EINTR and ETIMEDOUT all mean: look at the word again. */
	syscall(SYS_futex, word, FUTEX_WAIT_PRIVATE, seen, timeout, NULL, 0);
}

static void futex_wake(_Atomic uint32_t *word, int how_many)
{
	syscall(SYS_futex, word, FUTEX_WAKE_PRIVATE, how_many, NULL, NULL, 0);
}

/* Burn `cpu_ns` of this thread's CPU time; false when the stop flag cut it short. */
static bool burn_cpu(uint64_t cpu_ns)
{
	uint64_t start = now_ns(CLOCK_THREAD_CPUTIME_ID);
	uint64_t x = start | 1U;

	for (;;) {
		if (now_ns(CLOCK_THREAD_CPUTIME_ID) - start >= cpu_ns)
			break;
		if (stopping())
			return false;
		for (int i = 0; i < 512; i++)
			x = x * 6364136223846793005ULL + 1442695040888963407ULL;
	}
	compute_sink = x;
	return true;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	uint32_t seen = 0;

	for (;;) {
		uint32_t cur = atomic_load_explicit(&w->posted, memory_order_acquire);
		if (stopping())
			break;
		if (cur == seen) {
			futex_wait(&w->posted, cur, NULL);
			continue;
		}
		uint64_t woke = now_ns(CLOCK_MONOTONIC);
		uint64_t stamp = atomic_load_explicit(&w->stamp_ns, memory_order_relaxed);
		hist_add(&w->wakeup, woke > stamp ? woke - stamp : 0);
		seen = cur;
		if (!burn_cpu((uint64_t)cfg.cpu_us * NSEC_PER_USEC))
			break;
		atomic_store_explicit(&w->done, cur, memory_order_release);
		atomic_fetch_add_explicit(&w->msg->completions, 1U, memory_order_release);
		futex_wake(&w->msg->completions, 1);
	}
	return NULL;
}

static void *messenger_main(void *arg)
{
	struct messenger *m = arg;
	uint32_t seq = 0;
	struct timespec think = {
		.tv_sec = cfg.sleep_us / 1000000U,
		.tv_nsec = (long)(cfg.sleep_us % 1000000U) * 1000L,
	};

	while (!stopping()) {
		seq++;
		for (unsigned int i = 0; i < cfg.workers; i++) {
			struct worker *w = &m->workers[i];
			uint64_t t = now_ns(CLOCK_MONOTONIC);
			m->posted_at[i] = t;
			m->recorded[i] = false;
			atomic_store_explicit(&w->stamp_ns, t, memory_order_relaxed);
			atomic_store_explicit(&w->posted, seq, memory_order_release);
			futex_wake(&w->posted, 1);
		}

		unsigned int remaining = cfg.workers;
		while (remaining > 0 && !stopping()) {
			uint32_t c = atomic_load_explicit(&m->completions, memory_order_acquire);
			for (unsigned int i = 0; i < cfg.workers; i++) {
				if (m->recorded[i])
					continue;
				if (atomic_load_explicit(&m->workers[i].done, memory_order_acquire) != seq)
					continue;
				uint64_t t = now_ns(CLOCK_MONOTONIC);
				hist_add(&m->request, t > m->posted_at[i] ? t - m->posted_at[i] : 0);
				m->requests++;
				m->recorded[i] = true;
				remaining--;
			}
			if (remaining > 0)
				futex_wait(&m->completions, c, NULL);
		}

		/* Think time sleeps on the stop flag, so the deadline interrupts it. */
		if (cfg.sleep_us > 0 && !stopping())
			futex_wait(&stop_flag, 0, &think);
	}
	return NULL;
}

/* ---- options --------------------------------------------------------------------------- */

static void usage(FILE *out, const char *prog)
{
	fprintf(out,
		"usage: %s [-m MESSAGE_THREADS] [-w WORKERS] [-r RUNTIME_S] [-c CPU_US] [-s SLEEP_US] [-j]\n"
		"  -m N   message threads (default %u, 1..%d)\n"
		"  -w N   workers per message thread (default %u, 1..%d)\n"
		"  -r S   runtime in seconds (default %u, 1..%d)\n"
		"  -c US  CPU time each request burns, microseconds (default %u, 0..%d)\n"
		"  -s US  think time between a message thread's rounds, microseconds (default %u, 0..%d)\n"
		"  -j     print one JSON object on stdout instead of a summary\n",
		prog, cfg.message_threads, MAX_MESSAGE_THREADS, cfg.workers, MAX_WORKERS, cfg.runtime_s,
		MAX_RUNTIME_S, cfg.cpu_us, MAX_CPU_US, cfg.sleep_us, MAX_SLEEP_US);
}

static bool parse_uint(const char *text, long lo, long hi, unsigned int *out)
{
	char *end = NULL;
	errno = 0;
	long v = strtol(text, &end, 10);
	if (errno != 0 || end == text || *end != '\0' || v < lo || v > hi)
		return false;
	*out = (unsigned int)v;
	return true;
}

static void bad_option(const char *prog, int opt, const char *value, long lo, long hi)
{
	fprintf(stderr, "%s: -%c expects an integer in %ld..%ld, got '%s'\n", prog, opt, lo, hi, value);
	usage(stderr, prog);
	exit(2);
}

static void parse_options(int argc, char **argv)
{
	int opt;
	opterr = 0;
	while ((opt = getopt(argc, argv, ":m:w:r:c:s:jh")) != -1) {
		switch (opt) {
		case 'm':
			if (!parse_uint(optarg, 1, MAX_MESSAGE_THREADS, &cfg.message_threads))
				bad_option(argv[0], opt, optarg, 1, MAX_MESSAGE_THREADS);
			break;
		case 'w':
			if (!parse_uint(optarg, 1, MAX_WORKERS, &cfg.workers))
				bad_option(argv[0], opt, optarg, 1, MAX_WORKERS);
			break;
		case 'r':
			if (!parse_uint(optarg, 1, MAX_RUNTIME_S, &cfg.runtime_s))
				bad_option(argv[0], opt, optarg, 1, MAX_RUNTIME_S);
			break;
		case 'c':
			if (!parse_uint(optarg, 0, MAX_CPU_US, &cfg.cpu_us))
				bad_option(argv[0], opt, optarg, 0, MAX_CPU_US);
			break;
		case 's':
			if (!parse_uint(optarg, 0, MAX_SLEEP_US, &cfg.sleep_us))
				bad_option(argv[0], opt, optarg, 0, MAX_SLEEP_US);
			break;
		case 'j':
			cfg.json = true;
			break;
		case 'h':
			usage(stdout, argv[0]);
			exit(0);
		case ':':
			fprintf(stderr, "%s: option -%c needs a value\n", argv[0], optopt);
			usage(stderr, argv[0]);
			exit(2);
		default:
			fprintf(stderr, "%s: unknown option -%c\n", argv[0], optopt);
			usage(stderr, argv[0]);
			exit(2);
		}
	}
	if (optind < argc) {
		fprintf(stderr, "%s: unexpected argument '%s'\n", argv[0], argv[optind]);
		usage(stderr, argv[0]);
		exit(2);
	}
	if (cfg.message_threads * cfg.workers > MAX_THREADS_TOTAL) {
		fprintf(stderr, "%s: -m %u x -w %u is more than %d worker threads; use fewer\n", argv[0],
			cfg.message_threads, cfg.workers, MAX_THREADS_TOTAL);
		exit(2);
	}
}

/* ---- output ---------------------------------------------------------------------------- */

static double us(uint64_t ns)
{
	return (double)ns / (double)NSEC_PER_USEC;
}

static void print_hist_json(const char *name, const struct hist *h)
{
	printf("\"%s\": {\"p50\": %.3f, \"p90\": %.3f, \"p99\": %.3f, \"p999\": %.3f, \"max\": %.3f, "
	       "\"mean\": %.3f, \"count\": %" PRIu64 "}",
	       name, us(hist_percentile(h, 500)), us(hist_percentile(h, 900)), us(hist_percentile(h, 990)),
	       us(hist_percentile(h, 999)), us(h->max), h->count ? us(h->sum) / (double)h->count : 0.0,
	       h->count);
}

static void print_hist_text(const char *name, const struct hist *h)
{
	printf("%s latency (us), %" PRIu64 " samples:\n", name, h->count);
	printf("  p50 %.1f  p90 %.1f  p99 %.1f  p99.9 %.1f  max %.1f\n", us(hist_percentile(h, 500)),
	       us(hist_percentile(h, 900)), us(hist_percentile(h, 990)), us(hist_percentile(h, 999)), us(h->max));
}

/* ---- main ------------------------------------------------------------------------------ */

static void *alloc_or_die(size_t align, size_t size)
{
	size = (size + align - 1) / align * align;
	void *p = aligned_alloc(align, size);
	if (p == NULL) {
		fprintf(stderr, "wakeup_server: out of memory (%zu bytes)\n", size);
		exit(1);
	}
	memset(p, 0, size);
	return p;
}

static void start_thread(pthread_t *t, void *(*fn)(void *), void *arg)
{
	int err = pthread_create(t, NULL, fn, arg);
	if (err != 0) {
		fprintf(stderr, "wakeup_server: cannot start a thread: %s\n", strerror(err));
		exit(1);
	}
}

int main(int argc, char **argv)
{
	parse_options(argc, argv);

	unsigned int nm = cfg.message_threads, nw = cfg.workers;
	struct messenger *msgs = alloc_or_die(64, sizeof(*msgs) * nm);
	for (unsigned int i = 0; i < nm; i++) {
		struct messenger *m = &msgs[i];
		m->workers = alloc_or_die(64, sizeof(*m->workers) * nw);
		m->posted_at = alloc_or_die(64, sizeof(*m->posted_at) * nw);
		m->recorded = alloc_or_die(64, sizeof(*m->recorded) * nw);
		for (unsigned int j = 0; j < nw; j++)
			m->workers[j].msg = m;
	}

	for (unsigned int i = 0; i < nm; i++)
		for (unsigned int j = 0; j < nw; j++)
			start_thread(&msgs[i].workers[j].thread, worker_main, &msgs[i].workers[j]);
	uint64_t start = now_ns(CLOCK_MONOTONIC);
	for (unsigned int i = 0; i < nm; i++)
		start_thread(&msgs[i].thread, messenger_main, &msgs[i]);

	struct timespec deadline = {
		.tv_sec = (time_t)((start + (uint64_t)cfg.runtime_s * NSEC_PER_SEC) / NSEC_PER_SEC),
		.tv_nsec = (long)((start + (uint64_t)cfg.runtime_s * NSEC_PER_SEC) % NSEC_PER_SEC),
	};
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &deadline, NULL) == EINTR)
		;

	/*
	 * Stop: set the flag first, then move every futex word on and wake its waiter, so a
	 * thread either sees the flag before it sleeps or is woken; compute loops poll it.
	 */
	atomic_store_explicit(&stop_flag, 1U, memory_order_release);
	uint64_t elapsed = now_ns(CLOCK_MONOTONIC) - start;
	futex_wake(&stop_flag, INT_MAX);
	for (unsigned int i = 0; i < nm; i++) {
		atomic_fetch_add_explicit(&msgs[i].completions, 1U, memory_order_release);
		futex_wake(&msgs[i].completions, INT_MAX);
		for (unsigned int j = 0; j < nw; j++) {
			atomic_fetch_add_explicit(&msgs[i].workers[j].posted, 1U, memory_order_release);
			futex_wake(&msgs[i].workers[j].posted, INT_MAX);
		}
	}
	for (unsigned int i = 0; i < nm; i++) {
		pthread_join(msgs[i].thread, NULL);
		for (unsigned int j = 0; j < nw; j++)
			pthread_join(msgs[i].workers[j].thread, NULL);
	}

	struct hist *wakeup = alloc_or_die(64, sizeof(*wakeup));
	struct hist *request = alloc_or_die(64, sizeof(*request));
	uint64_t requests = 0;
	for (unsigned int i = 0; i < nm; i++) {
		hist_merge(request, &msgs[i].request);
		requests += msgs[i].requests;
		for (unsigned int j = 0; j < nw; j++)
			hist_merge(wakeup, &msgs[i].workers[j].wakeup);
	}
	double runtime_s = (double)elapsed / (double)NSEC_PER_SEC;
	double rps = runtime_s > 0 ? (double)requests / runtime_s : 0.0;

	if (cfg.json) {
		printf("{");
		print_hist_json("wakeup_us", wakeup);
		printf(", ");
		print_hist_json("request_us", request);
		printf(", \"rps\": %.3f, \"requests\": %" PRIu64 ", \"runtime_s\": %.6f, ", rps, requests, runtime_s);
		printf("\"config\": {\"message_threads\": %u, \"workers\": %u, \"runtime_s\": %u, \"cpu_us\": %u, "
		       "\"sleep_us\": %u, \"online_cpus\": %ld}}\n",
		       cfg.message_threads, cfg.workers, cfg.runtime_s, cfg.cpu_us, cfg.sleep_us,
		       sysconf(_SC_NPROCESSORS_ONLN));
	} else {
		printf("wakeup_server: %u message threads x %u workers, %u us CPU per request, %u us think time\n",
		       cfg.message_threads, cfg.workers, cfg.cpu_us, cfg.sleep_us);
		print_hist_text("wakeup", wakeup);
		print_hist_text("request", request);
		printf("%" PRIu64 " requests in %.3f s: %.1f requests/s\n", requests, runtime_s, rps);
	}
	if (fflush(stdout) != 0) {
		fprintf(stderr, "wakeup_server: cannot write the results: %s\n", strerror(errno));
		return 1;
	}
	return 0;
}
