/*
 * backends/zynq.c - board backend: drives the synthesized zsq_dae IP on a Zynq-7000.
 *
 * - AXI-Lite registers: /dev/uioN (env ZSQ_UIO, default /dev/uio0), first page mapped.
 *   Offsets and AP_CTRL bits come from zsq_regs.h, generated from the interface
 *   definition (python/zynq_squeeze/engine/interface.py); override with -DZSQ_REG_...
 * - DMA memory: one physically contiguous u-dma-buf buffer (env ZSQ_UDMABUF, default
 *   udmabuf0; device /dev/<name>, env ZSQ_UDMABUF_DEV overrides the path), physical
 *   address (hex) and size (decimal) from <sysfs>/u-dma-buf/<name>/{phys_addr,size} or
 *   <sysfs>/udmabuf/<name>/... (<sysfs> = env ZSQ_SYSFS, default /sys/class).
 *   Mapped uncached (O_SYNC) by default; with ZSQ_UDMABUF_CACHED=1 it is mapped cacheable
 *   and every hand-over is bracketed by u-dma-buf's sync_for_device / sync_for_cpu.
 * - Layout: programs (instruction words, then weights) from the bottom of the buffer, 4 KiB
 *   aligned, each copied once and reused while the caller passes the same arrays (a model
 *   with several offloaded functions keeps them all resident); the arena at the top.
 * - Run: copy the arena in, write the four 64-bit addresses (act_rd and act_wr both point
 *   at the arena) and insn_count, set ap_start, poll ap_done (timeout env ZSQ_TIMEOUT_MS,
 *   default 10000 ms), read the 64-bit cycle counter, copy the arena back.
 * Never aborts: every failure is a negative ZSQ_RT_ERR_* code with a message. Not
 * thread-safe (one IP, one caller at a time).
 */
#if defined(__linux__) && !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L /* clock_gettime, nanosleep under -std=c99 */
#endif

#include "zsq_runtime.h"

#include <stdio.h>
#include <string.h>

/* Register offsets and AP_CTRL bits, generated from the interface definition. */
#include "zsq_regs.h"

const char *zsq_rt_backend(void) { return "zynq"; }

#if defined(__linux__)
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define ZSQ_REGS_MAP_BYTES 4096 /* one page covers the s_axilite map (ZSQ_REGS_BYTES) */
#define ZSQ_MAX_RESIDENT 16     /* programs kept in the DMA buffer at once */

typedef struct {
  const uint64_t *insn, *wgt; /* the caller's arrays: identity of a resident program */
  int64_t n_insn, wgt_words;
  size_t off_insn, off_wgt;   /* where their copies are in the DMA buffer */
} resident_t;

static struct {
  int open;
  int fd_uio, fd_buf, cached;
  volatile uint32_t *regs;
  uint8_t *buf;
  unsigned long long phys, size;
  char sysdir[256]; /* <sysfs>/<class>/<name> of the buffer */
  char uio[128];
  resident_t res[ZSQ_MAX_RESIDENT];
  int n_res;
  size_t used; /* end of the resident programs */
} g = {0, -1, -1, 0, NULL, NULL, 0, 0, "", "", {{0}}, 0, 0};

static int msg(char *err, size_t errlen, int code, const char *fmt, const char *a, const char *b) {
  if (err && errlen) {
    int n = snprintf(err, errlen, "%s: ", zsq_rt_strerror(code));
    if (n >= 0 && (size_t)n < errlen) snprintf(err + n, errlen - (size_t)n, fmt, a ? a : "", b ? b : "");
  }
  return code;
}

/* One unsigned number from a sysfs attribute in the base it is printed in: u-dma-buf
 * prints phys_addr in hex (with or without 0x) and size in decimal; reading size as hex
 * would turn 4194304 into 0x4194304 = 68,764,420 and defeat the size guard. */
static int read_attr(const char *dir, const char *attr, int base, unsigned long long *v) {
  char path[320], text[64], *end;
  FILE *f;
  size_t n;
  snprintf(path, sizeof path, "%s/%s", dir, attr);
  f = fopen(path, "r");
  if (!f) return -1;
  n = fread(text, 1, sizeof text - 1, f);
  fclose(f);
  text[n] = 0;
  errno = 0;
  *v = strtoull(text, &end, base);
  if (end == text || errno) return -1;
  while (*end == '\n' || *end == ' ' || *end == '\r' || *end == '\t') end++;
  return *end == 0 ? 0 : -1;
}

static int write_attr(const char *attr, unsigned long long v) {
  char path[320];
  FILE *f;
  int ok;
  snprintf(path, sizeof path, "%s/%s", g.sysdir, attr);
  f = fopen(path, "w");
  if (!f) return -1;
  ok = fprintf(f, "%llu\n", v) > 0;
  return (fclose(f) == 0 && ok) ? 0 : -1;
}

/* u-dma-buf manual cache maintenance (cacheable mapping only): direction 1 = to the
 * device (clean before the IP reads), 2 = from the device (invalidate before the CPU reads). */
static int sync_range(size_t off, size_t bytes, int to_device) {
  if (!g.cached || bytes == 0) return 0;
  if (write_attr("sync_offset", off) || write_attr("sync_size", bytes) ||
      write_attr("sync_direction", to_device ? 1u : 2u) ||
      write_attr(to_device ? "sync_for_device" : "sync_for_cpu", 1u))
    return -1;
  return 0;
}

static size_t align4k(size_t n) { return (n + 4095u) & ~(size_t)4095u; }

static void wr32(unsigned off, uint32_t v) { g.regs[off / 4] = v; }
static uint32_t rd32(unsigned off) { return g.regs[off / 4]; }
static void wr_addr(unsigned off, unsigned long long a) {
  wr32(off, (uint32_t)(a & 0xffffffffu));
  wr32(off + 4, (uint32_t)(a >> 32));
}

static long long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void zsq_rt_release(void) {
  if (g.buf) munmap(g.buf, (size_t)g.size);
  if (g.regs) munmap((void *)g.regs, ZSQ_REGS_MAP_BYTES);
  if (g.fd_buf >= 0) close(g.fd_buf);
  if (g.fd_uio >= 0) close(g.fd_uio);
  g.buf = NULL;
  g.regs = NULL;
  g.fd_buf = g.fd_uio = -1;
  g.open = 0;
  g.n_res = 0;
  g.used = 0;
}

/* Find the buffer's sysfs entry and read its address and size (cheap: done before any
 * device is opened, so that a program that cannot fit fails with NOMEM first). */
static int probe_buffer(const char **name, char *err, size_t errlen) {
  const char *sysfs = getenv("ZSQ_SYSFS") ? getenv("ZSQ_SYSFS") : "/sys/class";
  const char *classes[2] = {"u-dma-buf", "udmabuf"};
  int k;
  *name = getenv("ZSQ_UDMABUF") ? getenv("ZSQ_UDMABUF") : "udmabuf0";
  for (k = 0; k < 2; k++) {
    snprintf(g.sysdir, sizeof g.sysdir, "%s/%s/%s", sysfs, classes[k], *name);
    if (read_attr(g.sysdir, "phys_addr", 16, &g.phys) == 0 &&
        read_attr(g.sysdir, "size", 10, &g.size) == 0)
      return 0;
  }
  g.sysdir[0] = 0;
  return msg(err, errlen, ZSQ_RT_ERR_DEVICE, "no readable u-dma-buf phys_addr/size for %s under %s",
             *name, sysfs);
}

static int open_devices(const char *name, char *err, size_t errlen) {
  char dev[256];
  const char *uio = getenv("ZSQ_UIO") ? getenv("ZSQ_UIO") : "/dev/uio0";
  const char *cached = getenv("ZSQ_UDMABUF_CACHED");
  void *m;
  if (getenv("ZSQ_UDMABUF_DEV")) snprintf(dev, sizeof dev, "%s", getenv("ZSQ_UDMABUF_DEV"));
  else snprintf(dev, sizeof dev, "/dev/%s", name);
  snprintf(g.uio, sizeof g.uio, "%s", uio);
  g.cached = cached && cached[0] == '1';
  if (g.size == 0 || g.size > (unsigned long long)(size_t)-1)
    return msg(err, errlen, ZSQ_RT_ERR_DEVICE, "%s: unusable buffer size%s", name, NULL);
  g.fd_uio = open(uio, O_RDWR | O_SYNC);
  if (g.fd_uio < 0) return msg(err, errlen, ZSQ_RT_ERR_DEVICE, "%s: %s", uio, strerror(errno));
  m = mmap(NULL, ZSQ_REGS_MAP_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED, g.fd_uio, 0);
  if (m == MAP_FAILED) {
    int e = errno;
    zsq_rt_release();
    return msg(err, errlen, ZSQ_RT_ERR_DEVICE, "mmap %s: %s", uio, strerror(e));
  }
  g.regs = (volatile uint32_t *)m;
  /* O_SYNC: u-dma-buf maps the buffer uncached, so no cache maintenance is needed */
  g.fd_buf = open(dev, g.cached ? O_RDWR : (O_RDWR | O_SYNC));
  if (g.fd_buf < 0) {
    int e = errno;
    zsq_rt_release();
    return msg(err, errlen, ZSQ_RT_ERR_DEVICE, "%s: %s", dev, strerror(e));
  }
  m = mmap(NULL, (size_t)g.size, PROT_READ | PROT_WRITE, MAP_SHARED, g.fd_buf, 0);
  if (m == MAP_FAILED) {
    int e = errno;
    zsq_rt_release();
    return msg(err, errlen, ZSQ_RT_ERR_DEVICE, "mmap %s: %s", dev, strerror(e));
  }
  g.buf = (uint8_t *)m;
  g.open = 1;
  return ZSQ_RT_OK;
}

/* The program's resident copy (copied now if it is not in the buffer yet). */
static int make_resident(const zsq_rt_program_t *p, size_t arena_off, const resident_t **out,
                         char *err, size_t errlen) {
  const size_t insn_b = (size_t)p->n_insn * 8, wgt_b = (size_t)p->wgt_words * 8;
  const size_t need = align4k(insn_b) + align4k(wgt_b);
  resident_t *r;
  int k;
  for (k = 0; k < g.n_res; k++) {
    r = &g.res[k];
    if (r->insn == p->insn && r->n_insn == p->n_insn && r->wgt == p->wgt &&
        r->wgt_words == p->wgt_words && r->off_wgt + wgt_b <= arena_off) {
      *out = r;
      return ZSQ_RT_OK;
    }
  }
  if (g.n_res == ZSQ_MAX_RESIDENT || g.used + need > arena_off) { /* start over */
    g.n_res = 0;
    g.used = 0;
  }
  if (need > arena_off) {
    char a[64], b[64];
    snprintf(a, sizeof a, "%llu", (unsigned long long)(need + ((size_t)g.size - arena_off)));
    snprintf(b, sizeof b, "%llu", g.size);
    return msg(err, errlen, ZSQ_RT_ERR_NOMEM, "the program and its arena need %s bytes, the "
               "u-dma-buf buffer has %s", a, b);
  }
  r = &g.res[g.n_res++];
  r->insn = p->insn;
  r->n_insn = p->n_insn;
  r->wgt = p->wgt;
  r->wgt_words = p->wgt_words;
  r->off_insn = g.used;
  r->off_wgt = g.used + align4k(insn_b);
  g.used += need;
  memcpy(g.buf + r->off_insn, p->insn, insn_b);
  memcpy(g.buf + r->off_wgt, p->wgt, wgt_b);
  if (sync_range(r->off_insn, need, 1)) {
    g.n_res--; /* not usable: copy again next time */
    g.used -= need;
    return msg(err, errlen, ZSQ_RT_ERR_DEVICE, "cache sync_for_device failed under %s%s",
               g.sysdir, NULL);
  }
  *out = r;
  return ZSQ_RT_OK;
}

int zsq_rt_backend_run(const zsq_rt_program_t *p, uint64_t *arena, zsq_rt_stats_t *stats,
                       char *err, size_t errlen) {
  const char *t_env = getenv("ZSQ_TIMEOUT_MS");
  const long long timeout = t_env && atoll(t_env) > 0 ? atoll(t_env) : 10000;
  const size_t arena_b = (size_t)p->arena_words * 8;
  const resident_t *r;
  size_t arena_off;
  unsigned long long cyc;
  long long t0;
  int rc;

  if (!g.open) {
    const char *name;
    rc = probe_buffer(&name, err, errlen);
    if (rc) return rc;
    /* the size guard needs only sysfs: check before touching any device */
    if (align4k(arena_b) + align4k((size_t)p->n_insn * 8) + align4k((size_t)p->wgt_words * 8) >
        g.size) {
      char a[64], b[64];
      snprintf(a, sizeof a, "%llu", (unsigned long long)(align4k(arena_b) +
               align4k((size_t)p->n_insn * 8) + align4k((size_t)p->wgt_words * 8)));
      snprintf(b, sizeof b, "%llu", g.size);
      return msg(err, errlen, ZSQ_RT_ERR_NOMEM, "the program and its arena need %s bytes, the "
                 "u-dma-buf buffer has %s", a, b);
    }
    rc = open_devices(name, err, errlen);
    if (rc) return rc;
  }
  if (arena_b > g.size)
    return msg(err, errlen, ZSQ_RT_ERR_NOMEM, "the arena is larger than the u-dma-buf buffer%s%s",
               NULL, NULL);
  arena_off = ((size_t)g.size - arena_b) & ~(size_t)4095u;
  rc = make_resident(p, arena_off, &r, err, errlen);
  if (rc) return rc;
  if (!(rd32(ZSQ_REG_CTRL) & ZSQ_AP_IDLE))
    return msg(err, errlen, ZSQ_RT_ERR_DEVICE, "the accelerator behind %s is busy (not idle)%s",
               g.uio, NULL);

  memcpy(g.buf + arena_off, arena, arena_b);
  if (sync_range(arena_off, arena_b, 1))
    return msg(err, errlen, ZSQ_RT_ERR_DEVICE, "cache sync_for_device failed under %s%s", g.sysdir, NULL);
  wr_addr(ZSQ_REG_INSN, g.phys + r->off_insn);
  wr32(ZSQ_REG_INSN_COUNT, (uint32_t)p->n_insn);
  wr_addr(ZSQ_REG_WGT, g.phys + r->off_wgt);
  wr_addr(ZSQ_REG_ACT_RD, g.phys + arena_off); /* gmem_rd and gmem_wr share the arena */
  wr_addr(ZSQ_REG_ACT_WR, g.phys + arena_off);
  wr32(ZSQ_REG_CTRL, ZSQ_AP_START);
  t0 = now_ms();
  while (!(rd32(ZSQ_REG_CTRL) & ZSQ_AP_DONE)) {
    struct timespec nap = {0, 50000};
    if (now_ms() - t0 > timeout) {
      char ms[32];
      snprintf(ms, sizeof ms, "%lld", timeout);
      return msg(err, errlen, ZSQ_RT_ERR_TIMEOUT, "no ap_done from %s within %s ms", g.uio, ms);
    }
    nanosleep(&nap, NULL);
  }
  cyc = (unsigned long long)rd32(ZSQ_REG_CYCLES) |
        ((unsigned long long)rd32(ZSQ_REG_CYCLES + 4) << 32);
  if (sync_range(arena_off, arena_b, 0))
    return msg(err, errlen, ZSQ_RT_ERR_DEVICE, "cache sync_for_cpu failed under %s%s", g.sysdir, NULL);
  memcpy(arena, g.buf + arena_off, arena_b);
  if (stats) {
    stats->cycles = (int64_t)cyc;
    /* only the cycle counter exists in hardware */
    stats->load_busy = stats->compute_busy = stats->store_busy = -1;
    stats->macs = stats->rd_bytes = stats->wr_bytes = -1;
  }
  return ZSQ_RT_OK;
}

#else /* not Linux: no UIO / u-dma-buf */

void zsq_rt_release(void) {}

int zsq_rt_backend_run(const zsq_rt_program_t *p, uint64_t *arena, zsq_rt_stats_t *stats,
                       char *err, size_t errlen) {
  (void)p;
  (void)arena;
  (void)stats;
  if (err && errlen)
    snprintf(err, errlen, "%s: the zynq backend needs Linux (UIO, u-dma-buf)",
             zsq_rt_strerror(ZSQ_RT_ERR_DEVICE));
  return ZSQ_RT_ERR_DEVICE;
}

#endif
