/*
 * backends/zynq.c - board backend: drives the synthesized zsq_dae IP on a Zynq-7000 from
 * user space, through UIO (registers, interrupt) and u-dma-buf (DMA memory).
 *
 * Environment (all optional):
 *   ZSQ_UIO             UIO node of the IP, default /dev/uio0; its first map is the
 *                       s_axilite register block (offsets and bits: zsq_regs.h, generated
 *                       from python/zynq_squeeze/engine/interface.py; -DZSQ_REG_... overrides)
 *   ZSQ_UIO_IRQ         node to wait on for the interrupt, default ZSQ_UIO itself (the fake
 *                       device of hls_runtime/tools serves a pty here)
 *   ZSQ_IRQ             1 (default): wait on the interrupt when the node supports it (a
 *                       character device whose unmask write succeeds), else poll; 0: poll
 *   ZSQ_TIMEOUT_MS      longest run, default 10000; then ZSQ_RT_ERR_TIMEOUT
 *   ZSQ_UDMABUF         u-dma-buf buffer name, default udmabuf0
 *   ZSQ_UDMABUF_DEV     its device node, default /dev/<name>
 *   ZSQ_SYSFS           class root, default /sys/class: <root>/u-dma-buf/<name>/ (or
 *                       <root>/udmabuf/<name>/ of the older driver) with phys_addr, size
 *   ZSQ_UDMABUF_CACHED  unset: cacheable mapping with explicit sync when the five sync
 *                       attributes (sync_offset, sync_size, sync_direction, sync_for_cpu,
 *                       sync_for_device) are writable, else the O_SYNC (uncached) mapping;
 *                       1: cacheable with sync, an error if an attribute is missing;
 *                       0: O_SYNC. A buffer whose dma_coherent reads 1 is mapped cacheable
 *                       without sync (the hardware keeps it coherent).
 *
 * Sizes are parsed as u-dma-buf prints them: phys_addr in hex (%pad, "0x1f000000"), size in
 * decimal (%zu).
 *
 * Memory: the buffer holds the programs at the bottom (instruction words, then weights and
 * params, each 4 KiB aligned), copied once when a program is first run and kept while the
 * caller passes the same arrays (a model with several offloaded functions keeps them all
 * resident), and the activation arena at the top. A run copies only its input ranges in and
 * its output ranges out (zsq_rt_run_io; zsq_rt_run moves the whole arena).
 *
 * Cache (cacheable mapping, the default): every hand-over is one u-dma-buf sync (offset,
 * size, direction, then sync_for_device or sync_for_cpu), per range: after the CPU writes
 * a program or an input, sync_for_device TO_DEVICE (clean: the IP reads DDR); before the
 * start, sync_for_device FROM_DEVICE over each output (invalidate: no dirty line may be
 * evicted over what the IP writes); after ap_done, sync_for_cpu FROM_DEVICE over each
 * output (invalidate lines fetched meanwhile) before the CPU reads it. The O_SYNC mapping
 * needs none of this but makes every CPU access to the buffer an uncached one.
 *
 * Run: check ap_idle, write the four 64-bit addresses (act_rd and act_wr both point at the
 * arena) and insn_count, set ap_start, wait for ap_done with the timeout:
 *   interrupt - ap_done enabled in IER and GIE; ISR's ap_done cleared and the UIO
 *               interrupt unmasked (write 1) before the start; poll() on the
 *               node, read the event count, confirm ap_done in AP_CTRL (an event without it
 *               is stale: unmask and wait again), clear ISR;
 *   polling   - read AP_CTRL every 50 us.
 * Then read the IP's 64-bit cycle counter. The IP has no status register (its top returns
 * void and the modules have no error outputs: malformed programs are refused before the
 * start by zsq_rt_validate, a deadlock is a timeout); what it can show is the counter: an
 * ap_done without cycles_ap_vld, or fewer cycles than instructions (fetch reads one word
 * per cycle at most), is ZSQ_RT_ERR_ENGINE (an aborted run, another IP at this address,
 * or another process driving it).
 * ISR is cleared by "read, and write the bit back only if it reads set": right for both
 * generations of the Vitis HLS register file, toggle on write (2021.1 and earlier: the
 * read leaves it, the write toggles it to 0) and clear on read (2022.1 and later: the read
 * clears it, the write is ignored); an unconditional write would set a TOW bit that was
 * clear.
 * cycles_ap_vld is clear on read: it is read once before the start too, so that a run
 * that timed out and finished later cannot leave it set for the next one.
 *
 * Never aborts: every failure is a negative ZSQ_RT_ERR_* code with a message. Not
 * thread-safe (one IP, one caller at a time: the generated glue takes a lock).
 */
#if defined(__linux__) && !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L /* clock_gettime, nanosleep, poll under -std=c99 */
#endif

#include "zsq_runtime.h"

#include <stdio.h>
#include <string.h>

/* Register offsets and AP_CTRL / interrupt bits, generated from the interface definition. */
#include "zsq_regs.h"

const char *zsq_rt_backend(void) { return "zynq"; }

#if defined(__linux__)
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define ZSQ_MAX_RESIDENT 16 /* programs kept in the DMA buffer at once */

/* The CPU's writes to the buffer (and to the registers) must reach the interconnect
 * before the start bit does, and its reads of the results must not be satisfied before
 * ap_done was seen: a full data synchronization barrier (what the kernel's wmb()/rmb()
 * amount to on the Cortex-A9). Elsewhere (the host tests) a compiler/CPU fence. */
#if defined(__arm__) || defined(__aarch64__)
#define ZSQ_BARRIER() __asm__ __volatile__("dsb sy" ::: "memory")
#elif defined(__GNUC__)
#define ZSQ_BARRIER() __sync_synchronize()
#else
#define ZSQ_BARRIER() ((void)0)
#endif

enum { MODE_UNCACHED = 0, MODE_SYNC = 1, MODE_COHERENT = 2 };
enum { DIR_TO_DEVICE = 1, DIR_FROM_DEVICE = 2 }; /* u-dma-buf sync_direction values */

typedef struct {
  const uint64_t *insn, *wgt; /* the caller's arrays: identity of a resident program */
  int64_t n_insn, wgt_words;
  size_t off_insn, off_wgt, end; /* where their copies are in the DMA buffer */
} resident_t;

static struct {
  int open;
  int fd_uio, fd_irq, fd_buf;
  int mode, irq;
  volatile uint32_t *regs;
  size_t regs_len;
  uint8_t *buf;
  unsigned long long phys, size;
  char sysdir[256]; /* <sysfs>/<class>/<name> of the buffer */
  char uio[256], irqdev[256], dev[256];
  resident_t res[ZSQ_MAX_RESIDENT];
  int n_res;
  size_t used; /* end of the resident programs */
  long long runs, copied, syncs, irq_events;
  char info[1100]; /* room for the three paths and the numbers */
} g = {0, -1, -1, -1, 0, 0, NULL, 0, NULL, 0, 0, "", "", "", "", {{0}}, 0, 0, 0, 0, 0, 0, ""};

#if defined(__GNUC__)
static int msg(char *err, size_t errlen, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
#endif

static int msg(char *err, size_t errlen, int code, const char *fmt, ...) {
  if (err && errlen) {
    va_list ap;
    int n = snprintf(err, errlen, "%s: ", zsq_rt_strerror(code));
    if (n >= 0 && (size_t)n < errlen) {
      va_start(ap, fmt);
      vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
      va_end(ap);
    }
  }
  return code;
}

/* An environment switch: unset -> def, "0" / "1", anything else an error (a typo must not
 * silently pick a mode). */
static int env_flag(const char *name, int def, int *v, char *err, size_t errlen) {
  const char *s = getenv(name);
  if (!s || !s[0]) {
    *v = def;
    return ZSQ_RT_OK;
  }
  if ((s[0] == '0' || s[0] == '1') && s[1] == 0) {
    *v = s[0] - '0';
    return ZSQ_RT_OK;
  }
  return msg(err, errlen, ZSQ_RT_ERR_ARG, "%s=%s: expected 0 or 1", name, s);
}

static int env_timeout(long long *ms, char *err, size_t errlen) {
  const char *s = getenv("ZSQ_TIMEOUT_MS");
  char *end;
  long long v;
  *ms = 10000;
  if (!s || !s[0]) return ZSQ_RT_OK;
  errno = 0;
  v = strtoll(s, &end, 10);
  if (errno || end == s || *end || v < 1)
    return msg(err, errlen, ZSQ_RT_ERR_ARG, "ZSQ_TIMEOUT_MS=%s: expected a positive number of "
               "milliseconds", s);
  *ms = v;
  return ZSQ_RT_OK;
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

/* One sysfs write, checked: the kernel refuses a bad value in write() (EINVAL when the
 * range is outside the buffer), so the error is reported there. Decimal without leading
 * zeros: the driver parses with kstrtoull(base 0), where a leading 0 would mean octal. */
static int write_attr(const char *attr, unsigned long long v, char *err, size_t errlen) {
  char path[320], text[32];
  int fd, n, ok;
  snprintf(path, sizeof path, "%s/%s", g.sysdir, attr);
  n = snprintf(text, sizeof text, "%llu\n", v);
  fd = open(path, O_WRONLY);
  if (fd < 0) return msg(err, errlen, ZSQ_RT_ERR_DEVICE, "cache sync: %s: %s", path, strerror(errno));
  ok = write(fd, text, (size_t)n) == n;
  if (!ok) {
    int e = errno;
    close(fd);
    return msg(err, errlen, ZSQ_RT_ERR_DEVICE, "cache sync: writing %llu to %s: %s", v, path,
               strerror(e));
  }
  close(fd);
  return ZSQ_RT_OK;
}

/* u-dma-buf manual cache maintenance of buffer bytes [off, off + bytes) (cacheable mapping
 * only): dir TO_DEVICE cleans, FROM_DEVICE invalidates; for_device selects the hand-over. */
static int sync_range(size_t off, size_t bytes, int dir, int for_device, char *err, size_t errlen) {
  int rc;
  if (g.mode != MODE_SYNC || bytes == 0) return ZSQ_RT_OK;
  rc = write_attr("sync_offset", off, err, errlen);
  if (!rc) rc = write_attr("sync_size", bytes, err, errlen);
  if (!rc) rc = write_attr("sync_direction", (unsigned long long)dir, err, errlen);
  if (!rc) rc = write_attr(for_device ? "sync_for_device" : "sync_for_cpu", 1u, err, errlen);
  if (!rc) g.syncs++;
  return rc;
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
  if (g.regs) munmap((void *)g.regs, g.regs_len);
  if (g.fd_buf >= 0) close(g.fd_buf);
  if (g.fd_irq >= 0 && g.fd_irq != g.fd_uio) close(g.fd_irq);
  if (g.fd_uio >= 0) close(g.fd_uio);
  g.buf = NULL;
  g.regs = NULL;
  g.fd_buf = g.fd_irq = g.fd_uio = -1;
  g.open = 0;
  g.n_res = 0;
  g.used = 0;
}

const char *zsq_rt_backend_info(void) {
  static const char *modes[3] = {"uncached (O_SYNC)", "cacheable with u-dma-buf sync",
                                 "cacheable, dma-coherent"};
  if (!g.open) {
    snprintf(g.info, sizeof g.info, "zynq: not open (last open: runs %lld, copied %lld bytes)",
             g.runs, g.copied);
  } else {
    snprintf(g.info, sizeof g.info, "zynq: registers %s, wait %s%s, u-dma-buf %s at 0x%llx, "
             "%llu bytes, %s; runs %lld, copied %lld bytes, syncs %lld, interrupts %lld",
             g.uio, g.irq ? "interrupt on " : "polling", g.irq ? g.irqdev : "", g.dev, g.phys,
             g.size, modes[g.mode], g.runs, g.copied, g.syncs, g.irq_events);
  }
  return g.info;
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
      return ZSQ_RT_OK;
  }
  g.sysdir[0] = 0;
  return msg(err, errlen, ZSQ_RT_ERR_DEVICE, "no readable u-dma-buf phys_addr (hex) and size "
             "(decimal) for %s under %s/{u-dma-buf,udmabuf}", *name, sysfs);
}

/* The cache mode (see the file header). */
static int pick_mode(char *err, size_t errlen) {
  static const char *attrs[5] = {"sync_offset", "sync_size", "sync_direction", "sync_for_cpu",
                                 "sync_for_device"};
  unsigned long long coherent = 0;
  int cached = -1, k, rc = env_flag("ZSQ_UDMABUF_CACHED", -1, &cached, err, errlen);
  if (rc) return rc;
  if (cached == 0) {
    g.mode = MODE_UNCACHED;
    return ZSQ_RT_OK;
  }
  if (read_attr(g.sysdir, "dma_coherent", 10, &coherent) == 0 && coherent == 1) {
    g.mode = MODE_COHERENT;
    return ZSQ_RT_OK;
  }
  for (k = 0; k < 5; k++) {
    char path[320];
    snprintf(path, sizeof path, "%s/%s", g.sysdir, attrs[k]);
    if (access(path, W_OK) != 0) {
      if (cached == 1)
        return msg(err, errlen, ZSQ_RT_ERR_DEVICE, "ZSQ_UDMABUF_CACHED=1 but %s is not "
                   "writable (%s): no cache maintenance; set ZSQ_UDMABUF_CACHED=0 for the "
                   "uncached mapping", path, strerror(errno));
      g.mode = MODE_UNCACHED; /* an older driver: the uncached mapping is the safe one */
      return ZSQ_RT_OK;
    }
  }
  g.mode = MODE_SYNC;
  return ZSQ_RT_OK;
}

/* Interrupt or polling (see the file header); called with the registers mapped. */
static int setup_irq(char *err, size_t errlen) {
  struct stat st;
  const char *irq_env = getenv("ZSQ_UIO_IRQ");
  const uint32_t one = 1;
  int want = 1, rc = env_flag("ZSQ_IRQ", 1, &want, err, errlen);
  if (rc) return rc;
  g.irq = 0;
  g.irqdev[0] = 0;
  if (!want) return ZSQ_RT_OK;
  if (irq_env && irq_env[0]) {
    /* an explicit interrupt node must work: it is configuration, not a probe */
    snprintf(g.irqdev, sizeof g.irqdev, "%s", irq_env);
    g.fd_irq = open(irq_env, O_RDWR | O_NOCTTY);
    if (g.fd_irq < 0)
      return msg(err, errlen, ZSQ_RT_ERR_DEVICE, "ZSQ_UIO_IRQ %s: %s", irq_env, strerror(errno));
  } else {
    snprintf(g.irqdev, sizeof g.irqdev, "%s", g.uio);
    g.fd_irq = g.fd_uio;
  }
  /* A plain file (a register image) has no interrupt: reading it would return register
   * bytes and the unmask write would overwrite AP_CTRL. UIO without an IRQ refuses the
   * unmask write (EIO, or ENOSYS without irqcontrol). */
  if (fstat(g.fd_irq, &st) != 0 || !S_ISCHR(st.st_mode) ||
      write(g.fd_irq, &one, sizeof one) != (ssize_t)sizeof one) {
    if (irq_env && irq_env[0])
      return msg(err, errlen, ZSQ_RT_ERR_DEVICE, "ZSQ_UIO_IRQ %s: not an interrupt node "
                 "(a character device accepting the 4-byte unmask write)", irq_env);
    if (g.fd_irq != g.fd_uio) close(g.fd_irq);
    g.fd_irq = -1;
    g.irqdev[0] = 0;
    return ZSQ_RT_OK;
  }
  g.irq = 1;
  return ZSQ_RT_OK;
}

static int open_devices(const char *name, char *err, size_t errlen) {
  const char *uio = getenv("ZSQ_UIO") ? getenv("ZSQ_UIO") : "/dev/uio0";
  const long page = sysconf(_SC_PAGESIZE);
  void *m;
  int rc;
  if (getenv("ZSQ_UDMABUF_DEV")) snprintf(g.dev, sizeof g.dev, "%s", getenv("ZSQ_UDMABUF_DEV"));
  else snprintf(g.dev, sizeof g.dev, "/dev/%s", name);
  snprintf(g.uio, sizeof g.uio, "%s", uio);
  if (g.size == 0 || g.size > (unsigned long long)(size_t)-1)
    return msg(err, errlen, ZSQ_RT_ERR_DEVICE, "%s: unusable buffer size %llu", name, g.size);
  rc = pick_mode(err, errlen);
  if (rc) return rc;
  g.fd_uio = open(uio, O_RDWR);
  if (g.fd_uio < 0) return msg(err, errlen, ZSQ_RT_ERR_DEVICE, "%s: %s", uio, strerror(errno));
  /* one page of the first map covers the register block (ZSQ_REGS_BYTES) */
  g.regs_len = page > 0 && (size_t)page >= ZSQ_REGS_BYTES ? (size_t)page : 4096;
  m = mmap(NULL, g.regs_len, PROT_READ | PROT_WRITE, MAP_SHARED, g.fd_uio, 0);
  if (m == MAP_FAILED) {
    int e = errno;
    zsq_rt_release();
    return msg(err, errlen, ZSQ_RT_ERR_DEVICE, "mmap %s: %s", uio, strerror(e));
  }
  g.regs = (volatile uint32_t *)m;
  rc = setup_irq(err, errlen);
  if (rc) {
    zsq_rt_release();
    return rc;
  }
  /* without O_SYNC u-dma-buf maps the buffer cacheable (then synced per hand-over); with
   * it, uncached */
  g.fd_buf = open(g.dev, g.mode == MODE_UNCACHED ? (O_RDWR | O_SYNC) : O_RDWR);
  if (g.fd_buf < 0) {
    int e = errno;
    zsq_rt_release();
    return msg(err, errlen, ZSQ_RT_ERR_DEVICE, "%s: %s", g.dev, strerror(e));
  }
  m = mmap(NULL, (size_t)g.size, PROT_READ | PROT_WRITE, MAP_SHARED, g.fd_buf, 0);
  if (m == MAP_FAILED) {
    int e = errno;
    zsq_rt_release();
    return msg(err, errlen, ZSQ_RT_ERR_DEVICE, "mmap %s (%llu bytes): %s", g.dev, g.size,
               strerror(e));
  }
  g.buf = (uint8_t *)m;
  g.open = 1;
  g.runs = g.copied = g.syncs = g.irq_events = 0; /* zsq_rt_backend_info counts per open */
  return ZSQ_RT_OK;
}

/* Forget the resident programs the arena at arena_off would overwrite (a program with a
 * larger arena than the last one moves the arena down over them). */
static void evict_below_arena(size_t arena_off) {
  int k, m = 0;
  g.used = 0;
  for (k = 0; k < g.n_res; k++) {
    if (g.res[k].end > arena_off) continue;
    g.res[m++] = g.res[k];
    if (g.res[k].end > g.used) g.used = g.res[k].end;
  }
  g.n_res = m;
}

/* The program's resident copy (copied and cleaned now if it is not in the buffer yet). */
static int make_resident(const zsq_rt_program_t *p, size_t arena_off, const resident_t **out,
                         long long *copied, char *err, size_t errlen) {
  const size_t insn_b = (size_t)p->n_insn * 8, wgt_b = (size_t)p->wgt_words * 8;
  const size_t need = align4k(insn_b) + align4k(wgt_b);
  resident_t *r;
  int k, rc;
  evict_below_arena(arena_off);
  for (k = 0; k < g.n_res; k++) {
    r = &g.res[k];
    if (r->insn == p->insn && r->n_insn == p->n_insn && r->wgt == p->wgt &&
        r->wgt_words == p->wgt_words) {
      *out = r;
      return ZSQ_RT_OK;
    }
  }
  if (g.n_res == ZSQ_MAX_RESIDENT || g.used + need > arena_off) { /* start over */
    g.n_res = 0;
    g.used = 0;
  }
  if (need > arena_off)
    return msg(err, errlen, ZSQ_RT_ERR_NOMEM, "the program and its arena need %llu bytes, the "
               "u-dma-buf buffer has %llu", (unsigned long long)(need + ((size_t)g.size - arena_off)),
               g.size);
  r = &g.res[g.n_res];
  r->insn = p->insn;
  r->n_insn = p->n_insn;
  r->wgt = p->wgt;
  r->wgt_words = p->wgt_words;
  r->off_insn = g.used;
  r->off_wgt = g.used + align4k(insn_b);
  r->end = g.used + need;
  memcpy(g.buf + r->off_insn, p->insn, insn_b);
  memcpy(g.buf + r->off_wgt, p->wgt, wgt_b);
  *copied += (long long)(insn_b + wgt_b);
  g.copied += (long long)(insn_b + wgt_b);
  rc = sync_range(r->off_insn, insn_b, DIR_TO_DEVICE, 1, err, errlen);
  if (!rc) rc = sync_range(r->off_wgt, wgt_b, DIR_TO_DEVICE, 1, err, errlen);
  if (rc) return rc; /* not registered: copied again next time */
  g.n_res++;
  g.used = r->end;
  *out = r;
  return ZSQ_RT_OK;
}

/* Wait for ap_done (see the file header). Returns 0 with ap_done seen, or an error. */
static int wait_done(long long timeout, char *err, size_t errlen) {
  const long long t0 = now_ms();
  const uint32_t one = 1;
  if (!g.irq) {
    for (;;) {
      struct timespec nap = {0, 50000};
      if (rd32(ZSQ_REG_CTRL) & ZSQ_AP_DONE) return ZSQ_RT_OK;
      if (now_ms() - t0 > timeout)
        return msg(err, errlen, ZSQ_RT_ERR_TIMEOUT, "no ap_done from %s within %lld ms "
                   "(polling)", g.uio, timeout);
      nanosleep(&nap, NULL);
    }
  }
  for (;;) {
    struct pollfd pf;
    uint32_t count;
    long long left = timeout - (now_ms() - t0);
    int r;
    if (left < 0) left = 0;
    pf.fd = g.fd_irq;
    pf.events = POLLIN;
    pf.revents = 0;
    r = poll(&pf, 1, left > 2000000000 ? 2000000000 : (int)left);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return msg(err, errlen, ZSQ_RT_ERR_DEVICE, "poll %s: %s", g.irqdev, strerror(errno));
    if (r == 0) {
      if (rd32(ZSQ_REG_CTRL) & ZSQ_AP_DONE)
        return msg(err, errlen, ZSQ_RT_ERR_TIMEOUT, "ap_done is set but no interrupt arrived "
                   "on %s within %lld ms: check the IP's interrupt connection (or set "
                   "ZSQ_IRQ=0 to poll)", g.irqdev, timeout);
      return msg(err, errlen, ZSQ_RT_ERR_TIMEOUT, "no ap_done from %s within %lld ms "
                 "(interrupt on %s)", g.uio, timeout, g.irqdev);
    }
    if (pf.revents & (POLLERR | POLLHUP | POLLNVAL))
      return msg(err, errlen, ZSQ_RT_ERR_DEVICE, "interrupt node %s: error or hang-up while "
                 "waiting", g.irqdev);
    {
      const ssize_t n = read(g.fd_irq, &count, sizeof count); /* the event count */
      if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
      if (n <= 0)
        return msg(err, errlen, ZSQ_RT_ERR_DEVICE, "read %s: %s", g.irqdev,
                   n < 0 ? strerror(errno) : "end of file");
    }
    g.irq_events++;
    if (rd32(ZSQ_REG_CTRL) & ZSQ_AP_DONE) return ZSQ_RT_OK;
    /* an event that was not this run's ap_done (stale, or shared): wait again */
    if (rd32(ZSQ_REG_ISR) & ZSQ_IRQ_AP_DONE) wr32(ZSQ_REG_ISR, ZSQ_IRQ_AP_DONE);
    if (write(g.fd_irq, &one, sizeof one) != (ssize_t)sizeof one)
      return msg(err, errlen, ZSQ_RT_ERR_DEVICE, "unmask %s: %s", g.irqdev, strerror(errno));
  }
}

/* Before the start in interrupt mode: enable ap_done, clear a stale status and stale
 * events, unmask. */
static int arm_irq(char *err, size_t errlen) {
  const uint32_t one = 1;
  struct pollfd pf;
  uint32_t count;
  wr32(ZSQ_REG_GIE, ZSQ_GIE_ENABLE);
  wr32(ZSQ_REG_IER, rd32(ZSQ_REG_IER) | ZSQ_IRQ_AP_DONE);
  if (rd32(ZSQ_REG_ISR) & ZSQ_IRQ_AP_DONE) wr32(ZSQ_REG_ISR, ZSQ_IRQ_AP_DONE); /* toggle: clear */
  pf.fd = g.fd_irq;
  pf.events = POLLIN;
  pf.revents = 0;
  while (poll(&pf, 1, 0) > 0 && (pf.revents & POLLIN) && !(pf.revents & (POLLERR | POLLHUP)))
    if (read(g.fd_irq, &count, sizeof count) <= 0) break;
  if (write(g.fd_irq, &one, sizeof one) != (ssize_t)sizeof one)
    return msg(err, errlen, ZSQ_RT_ERR_DEVICE, "unmask %s: %s", g.irqdev, strerror(errno));
  return ZSQ_RT_OK;
}

static int run_io(const zsq_rt_program_t *p, uint64_t *arena, const zsq_rt_range_t *in, int n_in,
                  const zsq_rt_range_t *out, int n_out, zsq_rt_stats_t *stats, char *err,
                  size_t errlen) {
  const size_t arena_b = (size_t)p->arena_words * 8;
  const resident_t *r = NULL;
  size_t arena_off;
  unsigned long long cyc;
  long long timeout, copied = 0;
  uint32_t vld;
  int rc, k;

  rc = env_timeout(&timeout, err, errlen);
  if (rc) return rc;
  if (!g.open) {
    const char *name;
    size_t need;
    rc = probe_buffer(&name, err, errlen);
    if (rc) return rc;
    /* the size guard needs only sysfs: check before touching any device */
    need = align4k(arena_b) + align4k((size_t)p->n_insn * 8) + align4k((size_t)p->wgt_words * 8);
    if (need > g.size)
      return msg(err, errlen, ZSQ_RT_ERR_NOMEM, "the program and its arena need %llu bytes, the "
                 "u-dma-buf buffer %s has %llu", (unsigned long long)need, name, g.size);
    rc = open_devices(name, err, errlen);
    if (rc) return rc;
  }
  if (arena_b > g.size)
    return msg(err, errlen, ZSQ_RT_ERR_NOMEM, "the arena (%llu bytes) is larger than the "
               "u-dma-buf buffer (%llu)", (unsigned long long)arena_b, g.size);
  arena_off = ((size_t)g.size - arena_b) & ~(size_t)4095u;
  /* before any write to the buffer: an IP still running (a run that timed out) fetches
   * instructions and stores results there, and a program copied over its instructions
   * could send its stores anywhere */
  if (!(rd32(ZSQ_REG_CTRL) & ZSQ_AP_IDLE))
    return msg(err, errlen, ZSQ_RT_ERR_DEVICE, "the accelerator behind %s is busy (not idle)",
               g.uio);
  rc = make_resident(p, arena_off, &r, &copied, err, errlen);
  if (rc) return rc;

  for (k = 0; k < n_in; k++) { /* inputs in, cleaned to DDR */
    const size_t off = arena_off + (size_t)in[k].word * 8, bytes = (size_t)in[k].words * 8;
    memcpy(g.buf + off, arena + in[k].word, bytes);
    copied += (long long)bytes;
    g.copied += (long long)bytes;
    rc = sync_range(off, bytes, DIR_TO_DEVICE, 1, err, errlen);
    if (rc) return rc;
  }
  for (k = 0; k < n_out; k++) { /* no dirty line may land on the IP's results */
    rc = sync_range(arena_off + (size_t)out[k].word * 8, (size_t)out[k].words * 8,
                    DIR_FROM_DEVICE, 1, err, errlen);
    if (rc) return rc;
  }
  wr_addr(ZSQ_REG_INSN, g.phys + r->off_insn);
  wr32(ZSQ_REG_INSN_COUNT, (uint32_t)p->n_insn);
  wr_addr(ZSQ_REG_WGT, g.phys + r->off_wgt);
  wr_addr(ZSQ_REG_ACT_RD, g.phys + arena_off); /* gmem_rd and gmem_wr share the arena */
  wr_addr(ZSQ_REG_ACT_WR, g.phys + arena_off);
  if (g.irq) {
    rc = arm_irq(err, errlen);
    if (rc) return rc;
  } else {
    wr32(ZSQ_REG_GIE, 0); /* polling: keep the interrupt line quiet */
  }
  (void)rd32(ZSQ_REG_CYCLES_CTRL); /* clear on read: no cycles_ap_vld left from an earlier run */
  ZSQ_BARRIER();
  wr32(ZSQ_REG_CTRL, ZSQ_AP_START);
  g.runs++;
  rc = wait_done(timeout, err, errlen);
  if (rc) return rc;
  ZSQ_BARRIER();
  if (g.irq && (rd32(ZSQ_REG_ISR) & ZSQ_IRQ_AP_DONE)) wr32(ZSQ_REG_ISR, ZSQ_IRQ_AP_DONE);
  cyc = (unsigned long long)rd32(ZSQ_REG_CYCLES) |
        ((unsigned long long)rd32(ZSQ_REG_CYCLES + 4) << 32);
  vld = rd32(ZSQ_REG_CYCLES_CTRL) & ZSQ_AP_VLD; /* clear on read: once per run */
  if (!vld)
    return msg(err, errlen, ZSQ_RT_ERR_ENGINE, "%s signalled ap_done without a cycle count "
               "(cycles_ap_vld clear): the run did not complete in the zsq_dae IP (another "
               "IP at this address, or another process driving it)", g.uio);
  if (cyc < (unsigned long long)p->n_insn)
    return msg(err, errlen, ZSQ_RT_ERR_ENGINE, "%s counted %llu cycles for %lld instructions "
               "(fetch reads one per cycle at most): the IP did not run this program", g.uio,
               cyc, (long long)p->n_insn);
  for (k = 0; k < n_out; k++) { /* outputs back, after invalidating what was prefetched */
    const size_t off = arena_off + (size_t)out[k].word * 8, bytes = (size_t)out[k].words * 8;
    rc = sync_range(off, bytes, DIR_FROM_DEVICE, 0, err, errlen);
    if (rc) return rc;
    memcpy(arena + out[k].word, g.buf + off, bytes);
    copied += (long long)bytes;
    g.copied += (long long)bytes;
  }
  if (stats) {
    stats->cycles = (int64_t)cyc;
    /* only the cycle counter exists in hardware */
    stats->load_busy = stats->compute_busy = stats->store_busy = -1;
    stats->macs = stats->rd_bytes = stats->wr_bytes = -1;
    stats->copied_bytes = copied;
  }
  return ZSQ_RT_OK;
}

int zsq_rt_backend_run(const zsq_rt_program_t *p, uint64_t *arena, zsq_rt_stats_t *stats,
                       char *err, size_t errlen) {
  zsq_rt_range_t all;
  all.word = 0;
  all.words = p->arena_words;
  return run_io(p, arena, &all, 1, &all, 1, stats, err, errlen);
}

int zsq_rt_run_io(const zsq_rt_program_t *p, uint64_t *arena, const zsq_rt_range_t *in,
                  int n_in, const zsq_rt_range_t *out, int n_out, zsq_rt_stats_t *stats,
                  char *err, size_t errlen) {
  int rc = zsq_rt_check_io(p, arena, in, n_in, out, n_out, err, errlen);
  if (rc != ZSQ_RT_OK) return rc;
  return run_io(p, arena, in, n_in, out, n_out, stats, err, errlen);
}

#else /* not Linux: no UIO / u-dma-buf */

void zsq_rt_release(void) {}

const char *zsq_rt_backend_info(void) { return "zynq: unavailable (needs Linux)"; }

static int no_linux(char *err, size_t errlen) {
  if (err && errlen)
    snprintf(err, errlen, "%s: the zynq backend needs Linux (UIO, u-dma-buf)",
             zsq_rt_strerror(ZSQ_RT_ERR_DEVICE));
  return ZSQ_RT_ERR_DEVICE;
}

int zsq_rt_backend_run(const zsq_rt_program_t *p, uint64_t *arena, zsq_rt_stats_t *stats,
                       char *err, size_t errlen) {
  (void)p;
  (void)arena;
  (void)stats;
  return no_linux(err, errlen);
}

int zsq_rt_run_io(const zsq_rt_program_t *p, uint64_t *arena, const zsq_rt_range_t *in,
                  int n_in, const zsq_rt_range_t *out, int n_out, zsq_rt_stats_t *stats,
                  char *err, size_t errlen) {
  int rc = zsq_rt_check_io(p, arena, in, n_in, out, n_out, err, errlen);
  (void)stats;
  return rc != ZSQ_RT_OK ? rc : no_linux(err, errlen);
}

#endif
