/*
 * zsq_fake_device.c - the simulated zsq_dae board (see zsq_fake_device.h): register file,
 * u-dma-buf buffer and sysfs attributes as shared file mappings, an interrupt pty, and the
 * engine's C simulation run when ap_start is written. A test tool of the host: it is
 * never built for the board.
 */
#define _GNU_SOURCE /* posix_openpt, ptsname_r, cfmakeraw */
#include "zsq_fake_device.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "zsq_regs.h"

#define REGS_FILE_BYTES 4096

struct zsq_fake {
  char root[512], name[64], env[4096], pts[128];
  unsigned long long phys, size;
  zsqd_timing_t timing;
  volatile uint32_t *regs;
  uint8_t *buf;
  int pty_master, pty_slave;
  volatile int mode, stop, unmasked, pending, hung;
  long long mode_checked_ms;
  struct timespec mode_mtime;
  pthread_t thread;
  int thread_on;
  pthread_mutex_t lock; /* the stats, read by the test's thread */
  zsq_fake_stats_t st;
};

static int fail(char *err, size_t errlen, const char *fmt, ...) {
  if (err && errlen) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
  }
  return -1;
}

static long long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int write_text(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  int ok;
  if (!f) return -1;
  ok = fputs(text, f) >= 0;
  return (fclose(f) == 0 && ok) ? 0 : -1;
}

static void *map_file(const char *path, size_t bytes) {
  int fd = open(path, O_RDWR | O_CREAT, 0600);
  void *m;
  if (fd < 0) return NULL;
  if (ftruncate(fd, (off_t)bytes) != 0) {
    close(fd);
    return NULL;
  }
  m = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  close(fd);
  return m == MAP_FAILED ? NULL : m;
}

int zsq_fake_mode_from_name(const char *s) {
  static const char *names[4] = {"normal", "hang", "novld", "short"};
  int k;
  for (k = 0; k < 4; k++)
    if (strncmp(s, names[k], strlen(names[k])) == 0) return k;
  return -1;
}

/* The interrupt node: a pty in raw mode (no echo, no line editing, bytes as written). The
 * fake keeps the slave open too, so the master never sees a hang-up between clients. */
static int open_pty(zsq_fake_t *f, char *err, size_t errlen) {
  struct termios t;
  f->pty_master = posix_openpt(O_RDWR | O_NOCTTY);
  if (f->pty_master < 0) return fail(err, errlen, "posix_openpt: %s", strerror(errno));
  if (grantpt(f->pty_master) || unlockpt(f->pty_master) ||
      ptsname_r(f->pty_master, f->pts, sizeof f->pts))
    return fail(err, errlen, "pty setup: %s", strerror(errno));
  f->pty_slave = open(f->pts, O_RDWR | O_NOCTTY);
  if (f->pty_slave < 0) return fail(err, errlen, "%s: %s", f->pts, strerror(errno));
  if (tcgetattr(f->pty_slave, &t) == 0) {
    cfmakeraw(&t);
    tcsetattr(f->pty_slave, TCSANOW, &t);
  }
  fcntl(f->pty_master, F_SETFL, fcntl(f->pty_master, F_GETFL) | O_NONBLOCK);
  return 0;
}

int zsq_fake_open(const zsq_fake_config_t *cfg, zsq_fake_t **out, char *err, size_t errlen) {
  static const char *sync_attrs[6] = {"sync_offset", "sync_size", "sync_direction",
                                      "sync_for_cpu", "sync_for_device", "sync_owner"};
  char path[600], text[64], tmp[700]; /* root is at most 511 */
  zsq_fake_t *f;
  int k, n;
  *out = NULL;
  if (!cfg || !cfg->root) return fail(err, errlen, "no root directory");
  f = (zsq_fake_t *)calloc(1, sizeof *f);
  if (!f) return fail(err, errlen, "out of memory");
  f->pty_master = f->pty_slave = -1;
  pthread_mutex_init(&f->lock, NULL);
  snprintf(f->root, sizeof f->root, "%s", cfg->root);
  snprintf(f->name, sizeof f->name, "%s", cfg->name ? cfg->name : "udmabuf0");
  f->phys = cfg->phys ? cfg->phys : 0x1f000000ull;
  f->size = cfg->size ? cfg->size : (4ull << 20);
  f->timing = cfg->timing;
  f->mode = cfg->mode;
  mkdir(f->root, 0700);
  snprintf(path, sizeof path, "%s/sys", f->root);
  mkdir(path, 0700);
  snprintf(path, sizeof path, "%s/sys/u-dma-buf", f->root);
  mkdir(path, 0700);
  snprintf(path, sizeof path, "%s/sys/u-dma-buf/%s", f->root, f->name);
  if (mkdir(path, 0700) != 0 && errno != EEXIST) {
    zsq_fake_close(f);
    return fail(err, errlen, "mkdir %s: %s", path, strerror(errno));
  }
  /* as u-dma-buf prints them: %pad and %zu */
  snprintf(text, sizeof text, "0x%08llx\n", f->phys);
  snprintf(tmp, sizeof tmp, "%s/phys_addr", path);
  k = write_text(tmp, text);
  snprintf(text, sizeof text, "%llu\n", f->size);
  snprintf(tmp, sizeof tmp, "%s/size", path);
  k |= write_text(tmp, text);
  snprintf(tmp, sizeof tmp, "%s/dma_coherent", path);
  k |= write_text(tmp, "0\n");
  for (n = 0; n < 6; n++) {
    snprintf(tmp, sizeof tmp, "%s/%s", path, sync_attrs[n]);
    if (cfg->sync_attrs) k |= write_text(tmp, "0\n");
    else unlink(tmp);
  }
  if (k) {
    zsq_fake_close(f);
    return fail(err, errlen, "cannot write the attributes under %s", path);
  }
  snprintf(path, sizeof path, "%s/uio0", f->root);
  f->regs = (volatile uint32_t *)map_file(path, REGS_FILE_BYTES);
  snprintf(tmp, sizeof tmp, "%s/%s", f->root, f->name);
  f->buf = (uint8_t *)map_file(tmp, (size_t)f->size);
  if (!f->regs || !f->buf) {
    zsq_fake_close(f);
    return fail(err, errlen, "cannot map %s or %s: %s", path, tmp, strerror(errno));
  }
  memset((void *)f->regs, 0, REGS_FILE_BYTES);
  f->regs[ZSQ_REG_CTRL / 4] = ZSQ_AP_IDLE;
  if (cfg->irq && open_pty(f, err, errlen)) {
    zsq_fake_close(f);
    return -1;
  }
  snprintf(tmp, sizeof tmp, "%s/uio0.irq", f->root);
  unlink(tmp);
  if (f->pts[0] && symlink(f->pts, tmp) != 0) { /* a convenience only */
  }
  n = snprintf(f->env, sizeof f->env,
               "ZSQ_UIO=%s/uio0\nZSQ_UDMABUF=%s\nZSQ_UDMABUF_DEV=%s/%s\nZSQ_SYSFS=%s/sys\n",
               f->root, f->name, f->root, f->name, f->root);
  if (f->pts[0] && n > 0 && (size_t)n < sizeof f->env)
    snprintf(f->env + n, sizeof f->env - (size_t)n, "ZSQ_UIO_IRQ=%s\n", f->pts);
  /* the env file appears complete (rename), so a client polling for it never reads half */
  snprintf(tmp, sizeof tmp, "%s/env.tmp", f->root);
  snprintf(path, sizeof path, "%s/env", f->root);
  if (write_text(tmp, f->env) || rename(tmp, path)) {
    zsq_fake_close(f);
    return fail(err, errlen, "cannot write %s", path);
  }
  *out = f;
  return 0;
}

const char *zsq_fake_env(const zsq_fake_t *f) { return f->env; }

void zsq_fake_setenv(const zsq_fake_t *f) {
  char copy[4096], *line, *save = NULL;
  snprintf(copy, sizeof copy, "%s", f->env);
  unsetenv("ZSQ_UIO_IRQ");
  for (line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
    char *eq = strchr(line, '=');
    if (!eq) continue;
    *eq = 0;
    setenv(line, eq + 1, 1);
  }
}

uint8_t *zsq_fake_buffer(zsq_fake_t *f) { return f->buf; }
volatile uint32_t *zsq_fake_regs(zsq_fake_t *f) { return f->regs; }
unsigned long long zsq_fake_phys(const zsq_fake_t *f) { return f->phys; }

void zsq_fake_set_mode(zsq_fake_t *f, int mode) {
  if (f->hung && mode != ZSQ_FAKE_HANG) { /* like a reset of the PL: the run is abandoned */
    f->hung = 0;
    f->regs[ZSQ_REG_CTRL / 4] = ZSQ_AP_IDLE;
  }
  f->mode = mode;
}

void zsq_fake_get_stats(zsq_fake_t *f, zsq_fake_stats_t *st) {
  pthread_mutex_lock(&f->lock);
  *st = f->st;
  pthread_mutex_unlock(&f->lock);
}

static uint64_t rd64(const zsq_fake_t *f, unsigned off) {
  return (uint64_t)f->regs[off / 4] | ((uint64_t)f->regs[off / 4 + 1] << 32);
}

/* <root>/mode, when it changed (checked every 20 ms). */
static void poll_mode_file(zsq_fake_t *f) {
  char path[600], text[32];
  struct stat s;
  FILE *fp;
  size_t n;
  int m;
  if (now_ms() - f->mode_checked_ms < 20) return;
  f->mode_checked_ms = now_ms();
  snprintf(path, sizeof path, "%s/mode", f->root);
  if (stat(path, &s) != 0) return;
  if (s.st_mtim.tv_sec == f->mode_mtime.tv_sec && s.st_mtim.tv_nsec == f->mode_mtime.tv_nsec)
    return;
  f->mode_mtime = s.st_mtim;
  fp = fopen(path, "r");
  if (!fp) return;
  n = fread(text, 1, sizeof text - 1, fp);
  fclose(fp);
  text[n] = 0;
  m = zsq_fake_mode_from_name(text);
  if (m >= 0) zsq_fake_set_mode(f, m);
}

/* Unmask writes from the backend (4 bytes each: 1 unmasks, 0 masks, as UIO). */
static void read_unmasks(zsq_fake_t *f) {
  uint32_t v;
  if (f->pty_master < 0) return;
  while (read(f->pty_master, &v, sizeof v) == (ssize_t)sizeof v) {
    f->unmasked = v != 0;
    pthread_mutex_lock(&f->lock);
    f->st.unmasks++;
    pthread_mutex_unlock(&f->lock);
  }
}

static void deliver_irq(zsq_fake_t *f) {
  uint32_t count;
  if (f->pty_master < 0 || !f->pending || !f->unmasked) return;
  if (!(f->regs[ZSQ_REG_GIE / 4] & ZSQ_GIE_ENABLE) || !(f->regs[ZSQ_REG_IER / 4] & ZSQ_IRQ_AP_DONE))
    return;
  pthread_mutex_lock(&f->lock);
  count = (uint32_t)++f->st.events;
  pthread_mutex_unlock(&f->lock);
  if (write(f->pty_master, &count, sizeof count) == (ssize_t)sizeof count) {
    f->pending = 0;
    f->unmasked = 0; /* UIO masks the line until the next unmask write */
  }
}

/* Whether [addr, addr + bytes) lies in the buffer. */
static int in_buf(const zsq_fake_t *f, uint64_t addr, uint64_t bytes) {
  return addr >= f->phys && addr - f->phys <= f->size && bytes <= f->size - (addr - f->phys);
}

static void run_program(zsq_fake_t *f) {
  const uint64_t insn = rd64(f, ZSQ_REG_INSN), wgt = rd64(f, ZSQ_REG_WGT);
  const uint64_t act_rd = rd64(f, ZSQ_REG_ACT_RD), act_wr = rd64(f, ZSQ_REG_ACT_WR);
  const uint32_t count = f->regs[ZSQ_REG_INSN_COUNT / 4];
  const int mode = f->mode;
  zsqd_stats_t sst;
  char msg[256];
  int rc = -1, vld = 1;
  int64_t cycles = 0;
  msg[0] = 0;
  /* the IP takes the start: busy, no result yet */
  f->regs[ZSQ_REG_CTRL / 4] = 0;
  f->regs[ZSQ_REG_ISR / 4] = 0;
  f->regs[ZSQ_REG_CYCLES_CTRL / 4] = 0;
  __sync_synchronize();
  pthread_mutex_lock(&f->lock);
  f->st.starts++;
  f->st.insn = insn, f->st.wgt = wgt, f->st.act_rd = act_rd, f->st.act_wr = act_wr;
  f->st.insn_count = count;
  pthread_mutex_unlock(&f->lock);
  if (mode == ZSQ_FAKE_HANG) {
    f->hung = 1;
    return;
  }
  memset(&sst, 0, sizeof sst);
  if (act_rd != act_wr)
    snprintf(msg, sizeof msg, "act_rd 0x%llx and act_wr 0x%llx differ (the simulation has one "
             "arena)", (unsigned long long)act_rd, (unsigned long long)act_wr);
  else if (count == 0 || !in_buf(f, insn, (uint64_t)count * 8) || !in_buf(f, wgt, 8) ||
           !in_buf(f, act_rd, 8) || (insn | wgt | act_rd) % 8)
    snprintf(msg, sizeof msg, "addresses outside the buffer [0x%llx, 0x%llx) or unaligned: insn "
             "0x%llx (%u words), wgt 0x%llx, act 0x%llx", f->phys, f->phys + f->size,
             (unsigned long long)insn, count, (unsigned long long)wgt, (unsigned long long)act_rd);
  else
    rc = zsqd_run((const uint64_t *)(f->buf + (insn - f->phys)), count,
                  (const uint64_t *)(f->buf + (wgt - f->phys)),
                  (int64_t)((f->size - (wgt - f->phys)) / 8),
                  (uint64_t *)(f->buf + (act_rd - f->phys)),
                  (int64_t)((f->size - (act_rd - f->phys)) / 8), &f->timing, NULL, &sst, msg,
                  (int)sizeof msg);
  if (rc == 0) cycles = sst.cycles;
  pthread_mutex_lock(&f->lock);
  f->st.sim_rc = rc;
  snprintf(f->st.error, sizeof f->st.error, "%s", rc ? msg : "");
  pthread_mutex_unlock(&f->lock);
  if (rc == ZSQD_ERR_DEADLOCK) { /* the hardware would wait forever */
    f->hung = 1;
    return;
  }
  if (rc != 0 || mode == ZSQ_FAKE_NOVLD) vld = 0, cycles = 0;
  if (mode == ZSQ_FAKE_SHORT) cycles = 1;
  f->regs[ZSQ_REG_CYCLES / 4] = (uint32_t)((uint64_t)cycles & 0xffffffffu);
  f->regs[ZSQ_REG_CYCLES / 4 + 1] = (uint32_t)((uint64_t)cycles >> 32);
  f->regs[ZSQ_REG_CYCLES_CTRL / 4] = vld ? ZSQ_AP_VLD : 0;
  if (f->regs[ZSQ_REG_IER / 4] & ZSQ_IRQ_AP_DONE) f->regs[ZSQ_REG_ISR / 4] = ZSQ_IRQ_AP_DONE;
  pthread_mutex_lock(&f->lock);
  f->st.done++;
  f->st.cycles = cycles;
  pthread_mutex_unlock(&f->lock);
  __sync_synchronize(); /* results and counter before ap_done */
  f->regs[ZSQ_REG_CTRL / 4] = ZSQ_AP_DONE | ZSQ_AP_IDLE | ZSQ_AP_READY;
  f->pending = 1;
}

int zsq_fake_step(zsq_fake_t *f) {
  int ran = 0;
  poll_mode_file(f);
  read_unmasks(f);
  if (!f->hung && (f->regs[ZSQ_REG_CTRL / 4] & ZSQ_AP_START)) {
    __sync_synchronize(); /* the registers written before the start */
    run_program(f);
    ran = !f->hung;
  }
  read_unmasks(f);
  deliver_irq(f);
  return ran;
}

static void *serve(void *arg) {
  zsq_fake_t *f = (zsq_fake_t *)arg;
  while (!f->stop) {
    struct timespec nap = {0, 100000};
    if (!zsq_fake_step(f)) nanosleep(&nap, NULL);
  }
  return NULL;
}

int zsq_fake_start(zsq_fake_t *f) {
  if (f->thread_on) return 0;
  f->stop = 0;
  if (pthread_create(&f->thread, NULL, serve, f) != 0) return -1;
  f->thread_on = 1;
  return 0;
}

void zsq_fake_stop(zsq_fake_t *f) {
  if (!f->thread_on) return;
  f->stop = 1;
  pthread_join(f->thread, NULL);
  f->thread_on = 0;
}

void zsq_fake_close(zsq_fake_t *f) {
  if (!f) return;
  zsq_fake_stop(f);
  if (f->regs) munmap((void *)f->regs, REGS_FILE_BYTES);
  if (f->buf) munmap(f->buf, (size_t)f->size);
  if (f->pty_slave >= 0) close(f->pty_slave);
  if (f->pty_master >= 0) close(f->pty_master);
  pthread_mutex_destroy(&f->lock);
  free(f);
}
