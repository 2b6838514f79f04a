/* test_zynq.c - the board backend (backends/zynq.c) without a board.
 *
 * The UIO register page and the u-dma-buf buffer are plain files (the backend maps them
 * like the devices), the sysfs entries a directory tree (env ZSQ_SYSFS), and an emulator
 * thread plays the IP: it waits for ap_start, reads the registers the backend wrote,
 * runs the instructions found at those addresses in the buffer on the engine's
 * simulation (zsqd_run) and raises ap_done with the cycle count. Checks: no device ->
 * ZSQ_RT_ERR_DEVICE; the u-dma-buf size is read in decimal (a 4 MiB buffer refuses a
 * 5 MiB program with ZSQ_RT_ERR_NOMEM); results equal the golden model and the cycles
 * the emulated IP reported; instructions and weights are copied once per program;
 * cacheable buffers are synced through sysfs; a hung IP times out and then reads busy.
 * Usage: test_zynq <dir written by tests/test_ctest.py> */
#define _POSIX_C_SOURCE 200809L
#include <fcntl.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "zsq_dae_sim.h"
#include "zsq_regs.h"
#include "zsq_test_util.h"

#define PHYS 0x1f000000ull
#define BUF_BYTES (4u << 20)

static char g_root[256];
static volatile uint32_t *g_regs;
static uint8_t *g_buf;
static const test_case_t *g_case;
static volatile int g_stop, g_runs, g_copy_ok;
static uint64_t g_insn_addr_seen;

static void write_text(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  if (f) {
    fputs(text, f);
    fclose(f);
  }
}

static void read_text(const char *path, char *out, size_t n) {
  FILE *f = fopen(path, "r");
  size_t k = 0;
  if (f) {
    k = fread(out, 1, n - 1, f);
    fclose(f);
  }
  out[k] = 0;
}

static void *map_file(const char *path, size_t bytes) {
  int fd = open(path, O_RDWR | O_CREAT, 0600);
  void *m;
  if (fd < 0 || ftruncate(fd, (off_t)bytes) != 0) return NULL;
  m = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  close(fd);
  return m == MAP_FAILED ? NULL : m;
}

static uint64_t rd64(unsigned off) {
  return (uint64_t)g_regs[off / 4] | ((uint64_t)g_regs[off / 4 + 1] << 32);
}

/* The IP: one run per ap_start, on what the registers point at. */
static void *emulator(void *arg) {
  (void)arg;
  while (!g_stop) {
    struct timespec nap = {0, 200000};
    if (g_regs[ZSQ_REG_CTRL / 4] & ZSQ_AP_START) {
      const uint64_t insn = rd64(ZSQ_REG_INSN), wgt = rd64(ZSQ_REG_WGT);
      const uint64_t act_rd = rd64(ZSQ_REG_ACT_RD), act_wr = rd64(ZSQ_REG_ACT_WR);
      const uint32_t count = g_regs[ZSQ_REG_INSN_COUNT / 4];
      zsqd_timing_t t;
      zsqd_stats_t st;
      char err[256];
      int rc = -1;
      t.rd_latency = g_case->rd_latency;
      t.wr_latency = g_case->wr_latency;
      t.outstanding = g_case->outstanding;
      t.beat_x100 = g_case->beat_x100;
      memset(&st, 0, sizeof st);
      g_insn_addr_seen = insn;
      /* the instructions at the address are the program's, copied by the backend */
      g_copy_ok = insn >= PHYS && insn - PHYS + (uint64_t)count * 8 <= BUF_BYTES &&
                  count == (uint32_t)g_case->n_insn &&
                  memcmp(g_buf + (insn - PHYS), g_case->insn, (size_t)count * 8) == 0;
      if (act_rd == act_wr && insn >= PHYS && wgt >= PHYS && act_wr >= PHYS &&
          act_wr - PHYS < BUF_BYTES && wgt - PHYS < BUF_BYTES && g_copy_ok)
        rc = zsqd_run((const uint64_t *)(g_buf + (insn - PHYS)), count,
                      (const uint64_t *)(g_buf + (wgt - PHYS)), (int64_t)(BUF_BYTES - (wgt - PHYS)) / 8,
                      (uint64_t *)(g_buf + (act_wr - PHYS)), (int64_t)(BUF_BYTES - (act_wr - PHYS)) / 8,
                      &t, NULL, &st, err, (int)sizeof err);
      if (rc) fprintf(stderr, "emulated IP: rc %d %s\n", rc, err);
      g_regs[ZSQ_REG_CYCLES / 4] = (uint32_t)(rc ? 0 : st.cycles);
      g_regs[ZSQ_REG_CYCLES / 4 + 1] = (uint32_t)((uint64_t)(rc ? 0 : st.cycles) >> 32);
      g_runs++;
      g_regs[ZSQ_REG_CTRL / 4] = ZSQ_AP_DONE | ZSQ_AP_IDLE;
    }
    nanosleep(&nap, NULL);
  }
  return NULL;
}

/* Flip every weight word, leaving the params words (what LOAD_PARAMS reads) valid. */
static void flip_weights(test_case_t *c) {
  char *is_param = (char *)calloc((size_t)c->wgt_words, 1);
  int64_t addr = 0, n = 0, i, k;
  if (!is_param) return;
  for (i = 0; i < c->n_insn; i++) {
    const uint64_t w = c->insn[i];
    if ((w & 15u) == ZSQ_OP_SET && ((w >> 16) & 0xFF) == ZSQ_LP_ADDR) addr = (int32_t)(w >> 32);
    if ((w & 15u) == ZSQ_OP_SET && ((w >> 16) & 0xFF) == ZSQ_LP_CHANNELS) n = (int32_t)(w >> 32);
    if ((w & 15u) == ZSQ_OP_LOAD_PARAMS)
      for (k = addr; k < addr + n && k < c->wgt_words; k++) is_param[k] = 1;
  }
  for (i = 0; i < c->wgt_words; i++)
    if (!is_param[i]) c->wgt[i] ^= 0x0101010101010101ull;
  free(is_param);
}

static char *path_in(const char *rel) {
  static char p[4][512];
  static int k;
  k = (k + 1) & 3;
  snprintf(p[k], sizeof p[k], "%s/%s", g_root, rel);
  return p[k];
}

static void fake_board(const char *size_text) {
  char d[512];
  snprintf(d, sizeof d, "%s/sys", g_root);
  mkdir(d, 0700);
  snprintf(d, sizeof d, "%s/sys/u-dma-buf", g_root);
  mkdir(d, 0700);
  snprintf(d, sizeof d, "%s/sys/u-dma-buf/udmabuf0", g_root);
  mkdir(d, 0700);
  write_text(path_in("sys/u-dma-buf/udmabuf0/phys_addr"), "0x1f000000\n");
  write_text(path_in("sys/u-dma-buf/udmabuf0/size"), size_text);
  setenv("ZSQ_SYSFS", path_in("sys"), 1);
  setenv("ZSQ_UDMABUF_DEV", path_in("udmabuf0"), 1);
  setenv("ZSQ_UIO", path_in("uio0"), 1);
}

int main(int argc, char **argv) {
  static test_case_t cases[1];
  char err[256], text[64];
  test_case_t *c;
  zsq_rt_program_t p;
  zsq_rt_stats_t st;
  uint64_t *arena, *ref, *wcopy;
  pthread_t th;
  int rc, i;
  if (argc != 2) {
    fprintf(stderr, "usage: %s <dir>\n", argv[0]);
    return 2;
  }
  if (read_cases(argv[1], cases, 1) != 1) return 1;
  c = &cases[0];
  g_case = c;
  p = case_program(c);
  arena = (uint64_t *)malloc((size_t)c->arena_words * 8);
  ref = (uint64_t *)malloc((size_t)c->arena_words * 8);
  wcopy = (uint64_t *)malloc((size_t)c->wgt_words * 8);
  snprintf(g_root, sizeof g_root, "zsq_fake_board_XXXXXX");
  if (!arena || !ref || !wcopy || !mkdtemp(g_root)) return 1;
  CHECK(strcmp(zsq_rt_backend(), "zynq") == 0);
  memcpy(arena, c->arena_in, (size_t)c->arena_words * 8);

  /* no sysfs entry, no devices */
  setenv("ZSQ_SYSFS", path_in("nothing"), 1);
  setenv("ZSQ_UIO", path_in("nothing/uio0"), 1);
  CHECK(zsq_rt_run(&p, arena, NULL, err, sizeof err) == ZSQ_RT_ERR_DEVICE);
  CHECK(strstr(err, "u-dma-buf") != NULL);

  /* sysfs present, devices missing */
  fake_board("4194304\n");
  setenv("ZSQ_UIO", path_in("missing-uio"), 1);
  CHECK(zsq_rt_run(&p, arena, NULL, err, sizeof err) == ZSQ_RT_ERR_DEVICE);
  CHECK(strstr(err, "missing-uio") != NULL);

  /* size is decimal: 4194304 bytes cannot hold a 5 MiB arena (read as hex it would be
   * 68,764,420 and the run would go on to the missing device) */
  {
    zsq_rt_program_t big = p;
    uint64_t *big_arena = (uint64_t *)calloc(5u << 17, 8);
    big.arena_words = 5 << 17;
    CHECK(big_arena != NULL);
    rc = zsq_rt_run(&big, big_arena, NULL, err, sizeof err);
    CHECK(rc == ZSQ_RT_ERR_NOMEM);
    CHECK(strstr(err, "4194304") != NULL);
    free(big_arena);
  }
  /* a size that is not a number */
  write_text(path_in("sys/u-dma-buf/udmabuf0/size"), "lots\n");
  CHECK(zsq_rt_run(&p, arena, NULL, err, sizeof err) == ZSQ_RT_ERR_DEVICE);
  write_text(path_in("sys/u-dma-buf/udmabuf0/size"), "4194304\n");

  /* the emulated board */
  g_regs = (volatile uint32_t *)map_file(path_in("uio0"), 4096);
  g_buf = (uint8_t *)map_file(path_in("udmabuf0"), BUF_BYTES);
  CHECK(g_regs != NULL && g_buf != NULL);
  if (!g_regs || !g_buf) return 1;
  setenv("ZSQ_UIO", path_in("uio0"), 1);
  g_regs[ZSQ_REG_CTRL / 4] = ZSQ_AP_IDLE;
  pthread_create(&th, NULL, emulator, NULL);
  for (i = 0; i < 2; i++) {
    memcpy(arena, c->arena_in, (size_t)c->arena_words * 8);
    memset(&st, 0, sizeof st);
    rc = zsq_rt_run(&p, arena, &st, err, sizeof err);
    if (rc) fprintf(stderr, "%s\n", err);
    CHECK(rc == ZSQ_RT_OK);
    CHECK(g_copy_ok);
    CHECK(count_mismatches(c, arena) == 0);
    CHECK(st.cycles == c->cycles);
    CHECK(st.load_busy == -1 && st.macs == -1 && st.wr_bytes == -1);
  }
  CHECK(g_runs == 2);
  /* instructions live at the bottom of the buffer, the arena at the top */
  CHECK(g_insn_addr_seen == PHYS);

  /* weights are resident: changing the caller's copy does not change the next run ... */
  memcpy(wcopy, c->wgt, (size_t)c->wgt_words * 8);
  flip_weights(c);
  memcpy(arena, c->arena_in, (size_t)c->arena_words * 8);
  CHECK(zsq_rt_run(&p, arena, NULL, err, sizeof err) == ZSQ_RT_OK);
  CHECK(count_mismatches(c, arena) == 0);
  /* ... until the runtime is released: then it is copied again */
  zsq_rt_release();
  memcpy(arena, c->arena_in, (size_t)c->arena_words * 8);
  rc = zsq_rt_run(&p, arena, NULL, err, sizeof err);
  memcpy(ref, c->arena_in, (size_t)c->arena_words * 8);
  {
    zsqd_timing_t t = {c->rd_latency, c->wr_latency, c->outstanding, c->beat_x100};
    int rc2 = zsqd_run(c->insn, c->n_insn, c->wgt, c->wgt_words, ref, c->arena_words, &t, NULL,
                       NULL, NULL, 0);
    CHECK(rc == rc2);
    if (rc == 0 && rc2 == 0) {
      CHECK(memcmp(ref, arena, (size_t)c->arena_words * 8) == 0);
      CHECK(count_mismatches(c, arena) > 0); /* the flipped weights mattered */
    }
  }
  memcpy(c->wgt, wcopy, (size_t)c->wgt_words * 8);
  zsq_rt_release();

  /* cacheable buffer: the hand-overs go through u-dma-buf's sync attributes */
  setenv("ZSQ_UDMABUF_CACHED", "1", 1);
  memcpy(arena, c->arena_in, (size_t)c->arena_words * 8);
  CHECK(zsq_rt_run(&p, arena, NULL, err, sizeof err) == ZSQ_RT_OK);
  CHECK(count_mismatches(c, arena) == 0);
  read_text(path_in("sys/u-dma-buf/udmabuf0/sync_for_cpu"), text, sizeof text);
  CHECK(strcmp(text, "1\n") == 0);
  read_text(path_in("sys/u-dma-buf/udmabuf0/sync_for_device"), text, sizeof text);
  CHECK(strcmp(text, "1\n") == 0);
  read_text(path_in("sys/u-dma-buf/udmabuf0/sync_direction"), text, sizeof text);
  CHECK(strcmp(text, "2\n") == 0); /* the last sync was the arena back to the CPU */
  read_text(path_in("sys/u-dma-buf/udmabuf0/sync_size"), text, sizeof text);
  CHECK(atoll(text) == c->arena_words * 8);
  zsq_rt_release();
  unsetenv("ZSQ_UDMABUF_CACHED");

  /* a hung IP: no ap_done within the timeout; the next run finds it busy */
  g_stop = 1;
  pthread_join(th, NULL);
  setenv("ZSQ_TIMEOUT_MS", "100", 1);
  CHECK(zsq_rt_run(&p, arena, NULL, err, sizeof err) == ZSQ_RT_ERR_TIMEOUT);
  CHECK(strstr(err, "ap_done") != NULL);
  CHECK(zsq_rt_run(&p, arena, NULL, err, sizeof err) == ZSQ_RT_ERR_DEVICE);
  CHECK(strstr(err, "busy") != NULL);
  zsq_rt_release();

  free_case(c);
  free(arena);
  free(ref);
  free(wcopy);
  if (g_failures) fprintf(stderr, "%d check(s) failed\n", g_failures);
  return g_failures ? 1 : 0;
}
