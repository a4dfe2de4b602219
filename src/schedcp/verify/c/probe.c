// SPDX-License-Identifier: GPL-2.0-only
/*
 * probe: the verifier's measuring tasks. Each one is a task of one kind (a CPU hog, a
 * sleeper, a forker) in one scheduling class (nice, policy, pinned), and records in its slot
 * of a shared file how it is being scheduled, so a real-time monitor can see starvation and
 * late wakeups while they happen instead of waiting for the kernel's watchdog.
 *
 *   probe spin  FILE SLOT [-n NICE] [-p other|batch|idle] [-c CPU]
 *       burn CPU in units of about UNIT_NS; after each unit record the time and the
 *       longest gap between two units (the time it was runnable but not running, or
 *       preempted, is in the gap: that is what starvation is)
 *   probe sleep FILE SLOT [-i PERIOD_US] [...]
 *       sleep PERIOD_US (default 10 ms) on an absolute deadline and record how late it woke:
 *       a log2 histogram, the maximum, the count
 *       with -p fifo -c CPU: a real-time task pinned to one CPU, which no sched_ext policy
 *       can delay: the CPU's heartbeat. When it is late, the CPU itself did not run (the
 *       emulator's vCPU thread was not scheduled on the host), and no probe gap on that CPU
 *       can be blamed on the policy.
 *   probe fork  FILE SLOT [...]
 *       fork a child that burns one unit and exits, wait for it, again: a fresh task must be
 *       scheduled for the forker to progress (a policy that never runs new tasks stops it)
 *
 * The file is FILE_SLOTS slots of struct slot, created by the monitor. Every field is written
 * with relaxed atomics by the probe alone; the monitor only reads. Times are CLOCK_MONOTONIC ns.
 *
 * Build: gcc -Wall -Wextra -O2 -o probe probe.c
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define FILE_SLOTS 32
#define HIST_BUCKETS 32 /* bucket b counts values in [2^b, 2^(b+1)) us; bucket 0 also < 1 us */
/* One unit of work: short enough that a gap of a few ms is visible, long enough that the
 * bookkeeping is a small part of it (about 1 ms of CPU at native speed). */
#define UNIT_NS 1000000ULL

struct slot {
	_Atomic uint64_t pid;
	_Atomic uint64_t count;       /* units done (spin, fork) or wakeups (sleep) */
	_Atomic uint64_t last_ns;     /* when the last unit ended / the last wakeup happened */
	_Atomic uint64_t max_gap_ns;  /* spin/fork: longest time between two units */
	_Atomic uint64_t max_late_ns; /* sleep: latest wakeup */
	_Atomic uint64_t sum_late_ns;
	_Atomic uint64_t started_ns;
	_Atomic uint64_t pad;
	_Atomic uint32_t hist[HIST_BUCKETS];
};

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static volatile sig_atomic_t stop;

static void on_term(int sig)
{
	(void)sig;
	stop = 1;
}

static void die(const char *what)
{
	fprintf(stderr, "probe: %s: %s\n", what, strerror(errno));
	exit(2);
}

/* Burn about UNIT_NS of CPU time (thread CPU clock: the same work whatever the machine's
 * speed would not be comparable across kinds; the same CPU time is). */
static void burn_unit(void)
{
	struct timespec ts;
	uint64_t start, t;
	volatile uint64_t x = 0;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	start = (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
	do {
		for (int i = 0; i < 2000; i++)
			x += (uint64_t)i * 2654435761U;
		clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
		t = (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
	} while (t - start < UNIT_NS);
}

static void record_gap(struct slot *s, uint64_t prev, uint64_t t)
{
	uint64_t gap = t - prev;

	if (gap > atomic_load_explicit(&s->max_gap_ns, memory_order_relaxed))
		atomic_store_explicit(&s->max_gap_ns, gap, memory_order_relaxed);
	atomic_store_explicit(&s->last_ns, t, memory_order_relaxed);
	atomic_fetch_add_explicit(&s->count, 1, memory_order_relaxed);
}

static void spin(struct slot *s)
{
	uint64_t prev = now_ns();

	while (!stop) {
		burn_unit();
		uint64_t t = now_ns();
		/* The gap is wall time per unit beyond the unit's own CPU time. */
		record_gap(s, prev + UNIT_NS, t > prev + UNIT_NS ? t : prev + UNIT_NS);
		prev = t;
	}
}

static void sleep_loop(struct slot *s, uint64_t period_ns)
{
	struct timespec next;
	uint64_t target = now_ns();

	while (!stop) {
		target += period_ns;
		next.tv_sec = (time_t)(target / 1000000000ULL);
		next.tv_nsec = (long)(target % 1000000000ULL);
		while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL) == EINTR && !stop)
			;
		uint64_t t = now_ns();
		uint64_t late = t > target ? t - target : 0;
		uint64_t us = late / 1000;
		int b = 0;

		while (us > 1 && b < HIST_BUCKETS - 1) {
			us >>= 1;
			b++;
		}
		atomic_fetch_add_explicit(&s->hist[b], 1, memory_order_relaxed);
		if (late > atomic_load_explicit(&s->max_late_ns, memory_order_relaxed))
			atomic_store_explicit(&s->max_late_ns, late, memory_order_relaxed);
		atomic_fetch_add_explicit(&s->sum_late_ns, late, memory_order_relaxed);
		atomic_store_explicit(&s->last_ns, t, memory_order_relaxed);
		atomic_fetch_add_explicit(&s->count, 1, memory_order_relaxed);
		if (t > target + period_ns)
			target = t; /* do not try to catch up a backlog of missed periods */
	}
}

static void fork_loop(struct slot *s)
{
	uint64_t prev = now_ns();

	while (!stop) {
		pid_t child = fork();

		if (child < 0)
			die("fork");
		if (child == 0) {
			burn_unit();
			_exit(0);
		}
		while (waitpid(child, NULL, 0) < 0 && errno == EINTR)
			if (stop)
				kill(child, SIGKILL);
		uint64_t t = now_ns();
		record_gap(s, prev, t);
		prev = t;
	}
}

static void set_class(int nice_value, const char *policy, int cpu)
{
	struct sched_param param = { .sched_priority = 0 };
	int pol = SCHED_OTHER;

	if (strcmp(policy, "batch") == 0)
		pol = SCHED_BATCH;
	else if (strcmp(policy, "idle") == 0)
		pol = SCHED_IDLE;
	else if (strcmp(policy, "fifo") == 0) {
		/* Real-time, above any sched_ext policy: a CPU's heartbeat (see the top). */
		pol = SCHED_FIFO;
		param.sched_priority = 30;
		nice_value = 0;
	} else if (strcmp(policy, "other") != 0) {
		fprintf(stderr, "probe: unknown policy %s\n", policy);
		exit(2);
	}
	if (sched_setscheduler(0, pol, &param) < 0)
		die("sched_setscheduler");
	if (pol != SCHED_FIFO && setpriority(PRIO_PROCESS, 0, nice_value) < 0)
		die("setpriority");
	if (cpu >= 0) {
		cpu_set_t set;

		CPU_ZERO(&set);
		CPU_SET(cpu, &set);
		if (sched_setaffinity(0, sizeof(set), &set) < 0)
			die("sched_setaffinity");
	}
}

int main(int argc, char **argv)
{
	int nice_value = 0, cpu = -1, opt;
	const char *policy = "other";
	uint64_t period_us = 10000;

	if (argc < 4) {
		fprintf(stderr, "usage: probe spin|sleep|fork FILE SLOT [-n NICE] [-p other|batch|idle|fifo] [-c CPU] [-i US]\n");
		return 2;
	}
	const char *kind = argv[1], *file = argv[2];
	int slot_index = atoi(argv[3]);

	optind = 4;
	while ((opt = getopt(argc, argv, "n:p:c:i:")) != -1) {
		switch (opt) {
		case 'n': nice_value = atoi(optarg); break;
		case 'p': policy = optarg; break;
		case 'c': cpu = atoi(optarg); break;
		case 'i': period_us = strtoull(optarg, NULL, 10); break;
		default: return 2;
		}
	}
	if (slot_index < 0 || slot_index >= FILE_SLOTS || period_us == 0) {
		fprintf(stderr, "probe: bad slot or period\n");
		return 2;
	}

	int fd = open(file, O_RDWR);

	if (fd < 0)
		die(file);
	struct slot *slots = mmap(NULL, FILE_SLOTS * sizeof(struct slot), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);

	if (slots == MAP_FAILED)
		die("mmap");
	struct slot *s = &slots[slot_index];

	signal(SIGTERM, on_term);
	signal(SIGINT, on_term);
	set_class(nice_value, policy, cpu);
	/* last_ns before started_ns: the monitor reads a slot as started from started_ns, and a
	 * probe preempted between the two stores (a SCHED_IDLE one can wait long there) showed
	 * last_ns 0, a gap as long as the guest's uptime. */
	atomic_store(&s->pid, (uint64_t)getpid());
	atomic_store(&s->last_ns, now_ns());
	atomic_store(&s->started_ns, now_ns());

	if (strcmp(kind, "spin") == 0)
		spin(s);
	else if (strcmp(kind, "sleep") == 0)
		sleep_loop(s, period_us * 1000ULL);
	else if (strcmp(kind, "fork") == 0)
		fork_loop(s);
	else {
		fprintf(stderr, "probe: unknown kind %s\n", kind);
		return 2;
	}
	return 0;
}
