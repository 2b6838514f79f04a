/*
 * zsq_fake_device - the simulated zsq_dae board (zsq_fake_device.h) as a process, for a
 * backend in another process, e.g. a board binary run under qemu-arm-static:
 *
 *   zsq_fake_device --root DIR [--size BYTES] [--phys HEX] [--name udmabuf0]
 *                   [--mode normal|hang|novld|short] [--no-irq] [--no-sync-attrs]
 *                   [--timing RD,WR,OUTSTANDING,BEAT_X100] [--runs N]
 *   # wait for DIR/env, then run the client with its variables:
 *   env $(cat DIR/env) qemu-arm-static -cpu cortex-a9 -L /usr/arm-linux-gnueabihf ./app
 *
 * Prints the variables (ZSQ_UIO, ZSQ_UIO_IRQ, ZSQ_UDMABUF, ZSQ_UDMABUF_DEV, ZSQ_SYSFS) on
 * stdout once the device is ready, serves until SIGINT / SIGTERM or N finished runs, and
 * logs each run on stderr. Change the mode while it runs by writing a mode name to
 * DIR/mode. Exit status 0, or 2 on bad arguments / setup failure.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "zsq_fake_device.h"

static volatile sig_atomic_t g_stop;
static void on_signal(int s) {
  (void)s;
  g_stop = 1;
}

static int usage(const char *why) {
  fprintf(stderr, "zsq_fake_device: %s\nusage: zsq_fake_device --root DIR [--size BYTES] "
          "[--phys HEX] [--name NAME] [--mode normal|hang|novld|short] [--no-irq] "
          "[--no-sync-attrs] [--timing RD,WR,OUTSTANDING,BEAT_X100] [--runs N]\n", why);
  return 2;
}

int main(int argc, char **argv) {
  zsq_fake_config_t cfg;
  zsq_fake_t *f;
  zsq_fake_stats_t st;
  char err[512];
  long long runs = -1, seen = 0;
  int i;
  memset(&cfg, 0, sizeof cfg);
  cfg.irq = 1;
  cfg.sync_attrs = 1;
  cfg.timing.rd_latency = 40;
  cfg.timing.wr_latency = 30;
  cfg.timing.outstanding = 8;
  cfg.timing.beat_x100 = 100;
  for (i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "--no-irq")) cfg.irq = 0;
    else if (!strcmp(a, "--no-sync-attrs")) cfg.sync_attrs = 0;
    else if (!v) return usage("missing value");
    else if (!strcmp(a, "--root")) cfg.root = v, i++;
    else if (!strcmp(a, "--name")) cfg.name = v, i++;
    else if (!strcmp(a, "--size")) cfg.size = strtoull(v, NULL, 10), i++;
    else if (!strcmp(a, "--phys")) cfg.phys = strtoull(v, NULL, 16), i++;
    else if (!strcmp(a, "--runs")) runs = atoll(v), i++;
    else if (!strcmp(a, "--mode")) {
      cfg.mode = zsq_fake_mode_from_name(v);
      if (cfg.mode < 0) return usage("unknown mode");
      i++;
    } else if (!strcmp(a, "--timing")) {
      long long t[4];
      if (sscanf(v, "%lld,%lld,%lld,%lld", &t[0], &t[1], &t[2], &t[3]) != 4)
        return usage("--timing takes RD,WR,OUTSTANDING,BEAT_X100");
      cfg.timing.rd_latency = t[0], cfg.timing.wr_latency = t[1];
      cfg.timing.outstanding = t[2], cfg.timing.beat_x100 = t[3];
      i++;
    } else {
      return usage(a);
    }
  }
  if (!cfg.root) return usage("--root is required");
  if (zsq_fake_open(&cfg, &f, err, sizeof err)) {
    fprintf(stderr, "zsq_fake_device: %s\n", err);
    return 2;
  }
  signal(SIGINT, on_signal);
  signal(SIGTERM, on_signal);
  fputs(zsq_fake_env(f), stdout);
  fflush(stdout);
  while (!g_stop && (runs < 0 || seen < runs)) {
    struct timespec nap = {0, 100000};
    if (zsq_fake_step(f)) {
      zsq_fake_get_stats(f, &st);
      seen = st.done;
      fprintf(stderr, "zsq_fake_device: run %lld: %u instructions, %lld cycles%s%s\n", st.done,
              st.insn_count, (long long)st.cycles, st.error[0] ? ", failed: " : "", st.error);
    } else {
      nanosleep(&nap, NULL);
    }
  }
  /* let the last interrupt reach the client before the pty goes away */
  for (i = 0; i < 50; i++) {
    struct timespec nap = {0, 2000000};
    zsq_fake_step(f);
    nanosleep(&nap, NULL);
  }
  zsq_fake_close(f);
  return 0;
}
