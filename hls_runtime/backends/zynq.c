/*
 * backends/zynq.c - board backend: drives the synthesized zsq_engine IP on a Zynq-7000.
 *
 * - AXI-Lite registers: /dev/uioN (env ZSQ_UIO, default /dev/uio0), mmap of 64 KiB.
 * - DMA memory: one physically contiguous u-dma-buf buffer (env ZSQ_UDMABUF, default
 *   udmabuf0): /dev/<name> mapped with O_SYNC (uncached), physical address and size from
 *   /sys/class/u-dma-buf/<name>/{phys_addr,size} (or /sys/class/udmabuf/<name>/...).
 *   Layout: [descriptors | weights | params | stats | arena], each 4 KiB aligned.
 * - Run: copy blobs and arena in, write argument registers, set ap_start, poll ap_done
 *   (timeout env ZSQ_TIMEOUT_MS, default 10000 ms), read ap_return, copy arena and stats
 *   back. Never aborts: every failure is a negative ZSQ_RT_ERR_* / ZSQ_ERR_* code.
 * Register offsets: see zsq_runtime.h (override with -DZSQ_REG_...=0x..).
 */
#if defined(__linux__) && !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L /* clock_gettime, nanosleep under -std=c99 */
#endif

#include "zsq_runtime.h"

#include <stdio.h>
#include <string.h>

#ifndef ZSQ_REG_CTRL
#define ZSQ_REG_CTRL 0x00
#endif
#ifndef ZSQ_REG_RETURN
#define ZSQ_REG_RETURN 0x10
#endif
#ifndef ZSQ_REG_PROG
#define ZSQ_REG_PROG 0x18
#endif
#ifndef ZSQ_REG_N_LAYERS
#define ZSQ_REG_N_LAYERS 0x24
#endif
#ifndef ZSQ_REG_ACT
#define ZSQ_REG_ACT 0x2c
#endif
#ifndef ZSQ_REG_WEIGHTS
#define ZSQ_REG_WEIGHTS 0x38
#endif
#ifndef ZSQ_REG_PARAMS
#define ZSQ_REG_PARAMS 0x44
#endif
#ifndef ZSQ_REG_STATS
#define ZSQ_REG_STATS 0x50
#endif
#define ZSQ_AP_START 0x1u
#define ZSQ_AP_DONE 0x2u
#define ZSQ_AP_IDLE 0x4u
#define ZSQ_UIO_MAP_BYTES 0x10000

const char *zsq_rt_backend(void) { return "zynq"; }

#if defined(__linux__)
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

static int msg(char *err, size_t errlen, int code, const char *what, const char *detail) {
  if (err && errlen)
    snprintf(err, errlen, "%s: %s%s%s", zsq_rt_strerror(code), what, detail ? " " : "",
             detail ? detail : "");
  return code;
}

static int read_sysfs_u64(const char *name, const char *attr, unsigned long long *v) {
  const char *classes[2] = {"/sys/class/u-dma-buf", "/sys/class/udmabuf"};
  int k;
  for (k = 0; k < 2; k++) {
    char path[256];
    FILE *f;
    snprintf(path, sizeof path, "%s/%s/%s", classes[k], name, attr);
    f = fopen(path, "r");
    if (!f) continue;
    if (fscanf(f, "%llx", v) == 1 || (rewind(f), fscanf(f, "%llu", v) == 1)) {
      fclose(f);
      return 0;
    }
    fclose(f);
  }
  return -1;
}

static size_t align4k(size_t n) { return (n + 4095u) & ~(size_t)4095u; }

static void wr32(volatile uint32_t *regs, unsigned off, uint32_t v) { regs[off / 4] = v; }
static uint32_t rd32(volatile uint32_t *regs, unsigned off) { return regs[off / 4]; }
static void wr_addr(volatile uint32_t *regs, unsigned off, unsigned long long a) {
  wr32(regs, off, (uint32_t)(a & 0xffffffffu));
  wr32(regs, off + 4, (uint32_t)(a >> 32));
}

static long long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int zsq_rt_backend_run(const zsq_rt_program_t *p, int8_t *arena, zsq_stats_t *stats, char *err,
                       size_t errlen) {
  const char *uio = getenv("ZSQ_UIO") ? getenv("ZSQ_UIO") : "/dev/uio0";
  const char *dbuf = getenv("ZSQ_UDMABUF") ? getenv("ZSQ_UDMABUF") : "udmabuf0";
  long long timeout = getenv("ZSQ_TIMEOUT_MS") ? atoll(getenv("ZSQ_TIMEOUT_MS")) : 10000;
  unsigned long long phys = 0, dsize = 0;
  size_t o_desc, o_w, o_p, o_st, o_act, total;
  int fd_uio = -1, fd_buf = -1, rc = ZSQ_OK;
  void *regs_map = MAP_FAILED, *buf_map = MAP_FAILED;
  volatile uint32_t *regs;
  uint8_t *buf;
  char path[128];
  long long t0;

  if (p->n_layers == 0) {
    if (stats) memset(stats, 0, sizeof(*stats));
    return ZSQ_OK;
  }
  if (read_sysfs_u64(dbuf, "phys_addr", &phys) != 0 || read_sysfs_u64(dbuf, "size", &dsize) != 0)
    return msg(err, errlen, ZSQ_RT_ERR_DEVICE, "no u-dma-buf sysfs entry for", dbuf);
  o_desc = 0;
  o_w = align4k(o_desc + (size_t)p->n_layers * sizeof(zsq_layer_t));
  o_p = align4k(o_w + p->weights_bytes);
  o_st = align4k(o_p + p->params_words * 4);
  o_act = align4k(o_st + sizeof(zsq_stats_t));
  total = align4k(o_act + p->arena_bytes);
  if (total > dsize) return msg(err, errlen, ZSQ_RT_ERR_NOMEM, "program needs more than", dbuf);

  fd_uio = open(uio, O_RDWR | O_SYNC);
  if (fd_uio < 0) {
    rc = msg(err, errlen, ZSQ_RT_ERR_DEVICE, uio, strerror(errno));
    goto done;
  }
  regs_map = mmap(NULL, ZSQ_UIO_MAP_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED, fd_uio, 0);
  if (regs_map == MAP_FAILED) {
    rc = msg(err, errlen, ZSQ_RT_ERR_DEVICE, "mmap", uio);
    goto done;
  }
  snprintf(path, sizeof path, "/dev/%s", dbuf);
  fd_buf = open(path, O_RDWR | O_SYNC);
  if (fd_buf < 0) {
    rc = msg(err, errlen, ZSQ_RT_ERR_DEVICE, path, strerror(errno));
    goto done;
  }
  buf_map = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_SHARED, fd_buf, 0);
  if (buf_map == MAP_FAILED) {
    rc = msg(err, errlen, ZSQ_RT_ERR_DEVICE, "mmap", path);
    goto done;
  }
  regs = (volatile uint32_t *)regs_map;
  buf = (uint8_t *)buf_map;
  if (!(rd32(regs, ZSQ_REG_CTRL) & ZSQ_AP_IDLE)) {
    rc = msg(err, errlen, ZSQ_RT_ERR_DEVICE, "accelerator is busy", NULL);
    goto done;
  }
  memcpy(buf + o_desc, p->layers, (size_t)p->n_layers * sizeof(zsq_layer_t));
  memcpy(buf + o_w, p->weights, p->weights_bytes);
  memcpy(buf + o_p, p->params, p->params_words * 4);
  memset(buf + o_st, 0, sizeof(zsq_stats_t));
  memcpy(buf + o_act, arena, p->arena_bytes);

  wr_addr(regs, ZSQ_REG_PROG, phys + o_desc);
  wr32(regs, ZSQ_REG_N_LAYERS, (uint32_t)p->n_layers);
  wr_addr(regs, ZSQ_REG_ACT, phys + o_act);
  wr_addr(regs, ZSQ_REG_WEIGHTS, phys + o_w);
  wr_addr(regs, ZSQ_REG_PARAMS, phys + o_p);
  wr_addr(regs, ZSQ_REG_STATS, phys + o_st);
  wr32(regs, ZSQ_REG_CTRL, ZSQ_AP_START);
  t0 = now_ms();
  while (!(rd32(regs, ZSQ_REG_CTRL) & ZSQ_AP_DONE)) {
    if (now_ms() - t0 > timeout) {
      rc = msg(err, errlen, ZSQ_RT_ERR_TIMEOUT, "no ap_done from", uio);
      goto done;
    }
    {
      struct timespec nap = {0, 50000};
      nanosleep(&nap, NULL);
    }
  }
  rc = (int)(int32_t)rd32(regs, ZSQ_REG_RETURN);
  if (rc == ZSQ_OK) {
    memcpy(arena, buf + o_act, p->arena_bytes);
    if (stats) memcpy(stats, buf + o_st, sizeof(zsq_stats_t));
  } else {
    msg(err, errlen, rc, "reported by the accelerator", NULL);
  }
done:
  if (buf_map != MAP_FAILED) munmap(buf_map, total);
  if (regs_map != MAP_FAILED) munmap(regs_map, ZSQ_UIO_MAP_BYTES);
  if (fd_buf >= 0) close(fd_buf);
  if (fd_uio >= 0) close(fd_uio);
  return rc;
}

#else /* not Linux: no UIO / u-dma-buf */

int zsq_rt_backend_run(const zsq_rt_program_t *p, int8_t *arena, zsq_stats_t *stats, char *err,
                       size_t errlen) {
  (void)p;
  (void)arena;
  (void)stats;
  if (err && errlen)
    snprintf(err, errlen, "%s: the zynq backend needs Linux (UIO, u-dma-buf)",
             zsq_rt_strerror(ZSQ_RT_ERR_DEVICE));
  return ZSQ_RT_ERR_DEVICE;
}

#endif
