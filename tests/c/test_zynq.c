/* test_zynq.c - the board backend (backends/zynq.c) against the simulated device
 * (hls_runtime/tools/zsq_fake_device.h) served by a thread of this process.
 *
 * For every program written by tests/test_ctest.py, checks:
 *  - results bit-exact with the engine's simulation run in place (what the csim backend
 *    does) and with the golden model, cycles equal to Python's, in every wait / cache mode:
 *    interrupt and polling; cacheable with u-dma-buf sync (the default), O_SYNC, dma-coherent;
 *  - only the input and output ranges move: bytes copied per run == input + output bytes
 *    once the program is resident (instructions + weights once, on the first run); words
 *    outside the output range are not written back; results stay exact with garbage in
 *    the DMA buffer's arena (the engine writes every other word it reads);
 *  - a second run reuses the resident program (changing the caller's weights has no
 *    effect until zsq_rt_release); two programs stay resident together; an arena that
 *    moves over a resident program evicts it;
 *  - the sync protocol: per resident run one clean per input and two invalidates per
 *    output, the last one sync_for_cpu over the output range;
 *  - failures as codes with messages: missing sysfs entry / attributes / device nodes
 *    (ZSQ_RT_ERR_DEVICE), a 4 MiB buffer refusing a 5 MiB arena (ZSQ_RT_ERR_NOMEM, the
 *    size read in decimal), a hung IP (ZSQ_RT_ERR_TIMEOUT, interrupt and polling, then
 *    "busy"), ap_done without a valid cycle count (ZSQ_RT_ERR_ENGINE), an interrupt that
 *    never arrives, bad environment values and bad ranges (ZSQ_RT_ERR_ARG).
 * Prints per program the bytes copied per run by zsq_rt_run (whole arena) and by
 * zsq_rt_run_io. Usage: test_zynq <dir written by tests/test_ctest.py> */
#define _GNU_SOURCE /* mkdtemp, setenv, posix_openpt */
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "zsq_dae_sim.h"
#include "zsq_fake_device.h"
#include "zsq_regs.h"
#include "zsq_test_util.h"

#define MAX_CASES 4
#define BUF_BYTES (4ull << 20)
#define POISON 0xA5A5A5A5A5A5A5A5ull

static char g_base[256];
static zsq_fake_t *g_fake;
static int g_dir_seq;

typedef struct {
  test_case_t *c;
  zsq_rt_program_t p;
  zsq_rt_range_t in, out;
  uint64_t *arena, *ref;
  int64_t ref_cycles;
} tc_t;

static void clear_env(void) {
  static const char *vars[] = {"ZSQ_UIO", "ZSQ_UIO_IRQ", "ZSQ_IRQ", "ZSQ_TIMEOUT_MS",
                               "ZSQ_UDMABUF", "ZSQ_UDMABUF_DEV", "ZSQ_SYSFS",
                               "ZSQ_UDMABUF_CACHED"};
  size_t k;
  for (k = 0; k < sizeof vars / sizeof vars[0]; k++) unsetenv(vars[k]);
}

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

/* <root of the current board>/rel */
static const char *at(const char *rel) {
  static char p[4][600];
  static int k;
  k = (k + 1) & 3;
  snprintf(p[k], sizeof p[k], "%s/b%d/%s", g_base, g_dir_seq, rel);
  return p[k];
}

/* A fresh simulated board (a new directory), served by a thread, in this process's env. */
static zsq_fake_t *board(const tc_t *t, int irq, int sync_attrs, unsigned long long size) {
  zsq_fake_config_t cfg;
  char root[400], err[256];
  zsq_rt_release();
  if (g_fake) zsq_fake_close(g_fake);
  g_fake = NULL;
  clear_env();
  snprintf(root, sizeof root, "%s/b%d", g_base, ++g_dir_seq);
  memset(&cfg, 0, sizeof cfg);
  cfg.root = root;
  cfg.size = size;
  cfg.irq = irq;
  cfg.sync_attrs = sync_attrs;
  cfg.timing.rd_latency = t->c->rd_latency;
  cfg.timing.wr_latency = t->c->wr_latency;
  cfg.timing.outstanding = t->c->outstanding;
  cfg.timing.beat_x100 = t->c->beat_x100;
  if (zsq_fake_open(&cfg, &g_fake, err, sizeof err) || zsq_fake_start(g_fake)) {
    fprintf(stderr, "fake device: %s\n", err);
    exit(1);
  }
  zsq_fake_setenv(g_fake);
  return g_fake;
}

/* The host arena before a run: the input words, poison elsewhere (io) or the whole input
 * image (whole-arena form). */
static void load_input(tc_t *t, int io) {
  int64_t k;
  if (!io) {
    memcpy(t->arena, t->c->arena_in, (size_t)t->p.arena_words * 8);
    return;
  }
  for (k = 0; k < t->p.arena_words; k++) t->arena[k] = POISON;
  memcpy(t->arena + t->in.word, t->c->arena_in + t->in.word, (size_t)t->in.words * 8);
}

static int run(tc_t *t, int io, zsq_rt_stats_t *st, char *err, size_t errlen) {
  load_input(t, io);
  memset(st, 0, sizeof *st);
  return io ? zsq_rt_run_io(&t->p, t->arena, &t->in, 1, &t->out, 1, st, err, errlen)
            : zsq_rt_run(&t->p, t->arena, st, err, errlen);
}

/* The output equals the in-place simulation's and the golden model's; in io mode, no other
 * word of the host arena changed. */
static int result_ok(const tc_t *t, int io) {
  int64_t k;
  if (memcmp(t->arena + t->out.word, t->ref + t->out.word, (size_t)t->out.words * 8) != 0) return 0;
  if (count_mismatches(t->c, t->arena) != 0) return 0;
  if (io)
    for (k = 0; k < t->p.arena_words; k++) {
      const int in_out = k >= t->out.word && k < t->out.word + t->out.words;
      const int in_in = k >= t->in.word && k < t->in.word + t->in.words;
      if (!in_out && t->arena[k] != (in_in ? t->c->arena_in[k] : POISON)) return 0;
    }
  return 1;
}

#define RUN_OK(t, io, st)                                      \
  do {                                                         \
    char e_[512];                                              \
    int rc_ = run((t), (io), (st), e_, sizeof e_);             \
    if (rc_) fprintf(stderr, "%s: rc %d: %s\n", (t)->c->name, rc_, e_); \
    CHECK(rc_ == ZSQ_RT_OK);                                   \
    CHECK(result_ok((t), (io)));                               \
    CHECK((st)->cycles == (t)->c->cycles && (st)->cycles == (t)->ref_cycles); \
  } while (0)

static long long program_bytes(const tc_t *t) { return (t->p.n_insn + t->p.wgt_words) * 8; }
static long long io_bytes(const tc_t *t) { return (t->in.words + t->out.words) * 8; }

static double elapsed_ms(const struct timespec *a) {
  struct timespec b;
  clock_gettime(CLOCK_MONOTONIC, &b);
  return (double)(b.tv_sec - a->tv_sec) * 1e3 + (double)(b.tv_nsec - a->tv_nsec) / 1e6;
}

/* Flip every weight word, leaving the params words (what LOAD_PARAMS reads) valid: the
 * program still runs, with other results. */
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

/* Results, residency, copy counts and the sync protocol of one program. */
static void test_success(tc_t *t) {
  zsq_rt_stats_t st;
  zsq_fake_stats_t fs;
  char text[64];
  long long syncs0;
  const char *info;

  /* default: interrupt + cacheable with sync; garbage in the buffer's arena */
  board(t, 1, 1, BUF_BYTES);
  memset(zsq_fake_buffer(g_fake), 0x5A, BUF_BYTES);
  RUN_OK(t, 1, &st);
  CHECK(st.copied_bytes == program_bytes(t) + io_bytes(t)); /* first run: program + io */
  CHECK(st.load_busy == -1 && st.macs == -1 && st.wr_bytes == -1);
  info = zsq_rt_backend_info();
  CHECK(strstr(info, "interrupt on /dev/pts/") != NULL);
  CHECK(strstr(info, "cacheable with u-dma-buf sync") != NULL);
  zsq_fake_get_stats(g_fake, &fs);
  CHECK(fs.insn == zsq_fake_phys(g_fake)); /* programs at the bottom of the buffer */
  CHECK(fs.insn_count == (uint32_t)t->p.n_insn);
  CHECK(memcmp(zsq_fake_buffer(g_fake), t->p.insn, (size_t)t->p.n_insn * 8) == 0);
  CHECK(fs.events == 1 && fs.unmasks >= 2); /* probe + arm */
  syncs0 = atoll(strstr(info, "syncs ") + 6);
  /* second run: the program is resident, only the input and output move */
  RUN_OK(t, 1, &st);
  CHECK(st.copied_bytes == io_bytes(t));
  info = zsq_rt_backend_info();
  CHECK(atoll(strstr(info, "syncs ") + 6) - syncs0 == 3); /* clean in, invalidate out x2 */
  read_text(at("sys/u-dma-buf/udmabuf0/sync_for_cpu"), text, sizeof text);
  CHECK(strcmp(text, "1\n") == 0);
  read_text(at("sys/u-dma-buf/udmabuf0/sync_direction"), text, sizeof text);
  CHECK(strcmp(text, "2\n") == 0); /* the last sync: the output back to the CPU */
  read_text(at("sys/u-dma-buf/udmabuf0/sync_size"), text, sizeof text);
  CHECK(atoll(text) == t->out.words * 8);
  read_text(at("sys/u-dma-buf/udmabuf0/sync_offset"), text, sizeof text);
  CHECK(atoll(text) == (long long)(((BUF_BYTES - (unsigned long long)t->p.arena_words * 8) &
                                    ~4095ull) + (unsigned long long)t->out.word * 8));
  zsq_fake_get_stats(g_fake, &fs);
  CHECK(fs.events == 2 && fs.done == 2);

  /* the whole-arena form moves the arena both ways */
  RUN_OK(t, 0, &st);
  CHECK(st.copied_bytes == 2 * t->p.arena_words * 8);
  printf("%s: arena %lld words, input %lld + output %lld words; bytes copied per run: "
         "zsq_rt_run %lld, zsq_rt_run_io %lld (first run +%lld of instructions and weights)\n",
         t->c->name, (long long)t->p.arena_words, (long long)t->in.words,
         (long long)t->out.words, (long long)(2 * t->p.arena_words * 8), io_bytes(t),
         program_bytes(t));

  /* weights are resident: changing the caller's copy does not change the next run ... */
  {
    uint64_t *saved = (uint64_t *)malloc((size_t)t->p.wgt_words * 8);
    char err[512];
    int rc;
    memcpy(saved, t->c->wgt, (size_t)t->p.wgt_words * 8);
    flip_weights(t->c);
    RUN_OK(t, 1, &st);
    CHECK(st.copied_bytes == io_bytes(t));
    /* ... until the runtime is released: then they are copied again, and the output is
     * the simulation's with the flipped weights */
    zsq_rt_release();
    rc = run(t, 1, &st, err, sizeof err);
    CHECK(rc == ZSQ_RT_OK && st.copied_bytes == program_bytes(t) + io_bytes(t));
    {
      uint64_t *flipped = (uint64_t *)malloc((size_t)t->p.arena_words * 8);
      zsqd_timing_t tm = {t->c->rd_latency, t->c->wr_latency, t->c->outstanding, t->c->beat_x100};
      memcpy(flipped, t->c->arena_in, (size_t)t->p.arena_words * 8);
      CHECK(zsqd_run(t->c->insn, t->c->n_insn, t->c->wgt, t->c->wgt_words, flipped,
                     t->p.arena_words, &tm, NULL, NULL, NULL, 0) == 0);
      CHECK(memcmp(t->arena + t->out.word, flipped + t->out.word, (size_t)t->out.words * 8) == 0);
      if (memcmp(flipped + t->out.word, t->ref + t->out.word, (size_t)t->out.words * 8) == 0)
        printf("%s: the flipped weights give the same output (the residency check is "
               "vacuous for this program)\n", t->c->name);
      free(flipped);
    }
    memcpy(t->c->wgt, saved, (size_t)t->p.wgt_words * 8);
    free(saved);
    zsq_rt_release();
  }

  /* polling: no interrupt goes out (GIE cleared) */
  setenv("ZSQ_IRQ", "0", 1);
  zsq_fake_get_stats(g_fake, &fs);
  syncs0 = fs.events;
  RUN_OK(t, 1, &st);
  CHECK(strstr(zsq_rt_backend_info(), "polling") != NULL);
  zsq_fake_get_stats(g_fake, &fs);
  CHECK(fs.events == syncs0);
  zsq_rt_release();
  unsetenv("ZSQ_IRQ");

  /* O_SYNC on request: no sync writes */
  setenv("ZSQ_UDMABUF_CACHED", "0", 1);
  RUN_OK(t, 1, &st);
  info = zsq_rt_backend_info();
  CHECK(strstr(info, "uncached (O_SYNC)") != NULL && strstr(info, "syncs 0,") != NULL);
  zsq_rt_release();
  unsetenv("ZSQ_UDMABUF_CACHED");

  /* dma-coherent: cacheable without sync */
  write_text(at("sys/u-dma-buf/udmabuf0/dma_coherent"), "1\n");
  RUN_OK(t, 1, &st);
  info = zsq_rt_backend_info();
  CHECK(strstr(info, "dma-coherent") != NULL && strstr(info, "syncs 0,") != NULL);
  zsq_rt_release();
  write_text(at("sys/u-dma-buf/udmabuf0/dma_coherent"), "0\n");

  /* an older driver without the sync attributes: O_SYNC, or an error if cached is forced */
  board(t, 0, 0, BUF_BYTES);
  RUN_OK(t, 1, &st);
  info = zsq_rt_backend_info();
  CHECK(strstr(info, "uncached (O_SYNC)") != NULL && strstr(info, "polling") != NULL);
  zsq_rt_release();
  setenv("ZSQ_UDMABUF_CACHED", "1", 1);
  {
    char err[512];
    CHECK(run(t, 1, &st, err, sizeof err) == ZSQ_RT_ERR_DEVICE);
    CHECK(strstr(err, "sync_offset") != NULL && strstr(err, "ZSQ_UDMABUF_CACHED=0") != NULL);
  }
  zsq_rt_release();
}

/* Two programs resident together; an arena moving over a resident program evicts it. */
static void test_two_programs(tc_t *a, tc_t *b) {
  zsq_rt_stats_t st;
  board(a, 1, 1, BUF_BYTES);
  RUN_OK(a, 1, &st);
  CHECK(st.copied_bytes == program_bytes(a) + io_bytes(a));
  RUN_OK(b, 1, &st);
  CHECK(st.copied_bytes == program_bytes(b) + io_bytes(b));
  RUN_OK(a, 1, &st);
  CHECK(st.copied_bytes == io_bytes(a));
  RUN_OK(b, 1, &st);
  CHECK(st.copied_bytes == io_bytes(b));
  /* a's program with an arena that reaches down over b's resident copy (a's and b's
   * copies sit at the bottom, a's first): b must be copied again */
  {
    tc_t big = *a;
    const size_t a_end = ((size_t)(a->p.n_insn * 8 + 4095) & ~4095u) +
                         ((size_t)(a->p.wgt_words * 8 + 4095) & ~4095u);
    big.p.arena_words = (int64_t)((BUF_BYTES - a_end) / 8);
    big.arena = (uint64_t *)malloc((size_t)big.p.arena_words * 8);
    if (big.arena) {
      char err[512];
      int rc;
      int64_t k;
      for (k = 0; k < big.p.arena_words; k++) big.arena[k] = POISON;
      memcpy(big.arena + big.in.word, a->c->arena_in + big.in.word, (size_t)big.in.words * 8);
      rc = zsq_rt_run_io(&big.p, big.arena, &big.in, 1, &big.out, 1, &st, err, sizeof err);
      if (rc) fprintf(stderr, "big arena: %s\n", err);
      CHECK(rc == ZSQ_RT_OK);
      CHECK(memcmp(big.arena + big.out.word, a->ref + a->out.word, (size_t)a->out.words * 8) == 0);
      CHECK(st.copied_bytes == io_bytes(a)); /* a stays resident below the arena */
    }
    free(big.arena);
  }
  RUN_OK(b, 1, &st);
  CHECK(st.copied_bytes == program_bytes(b) + io_bytes(b)); /* evicted, copied again */
  zsq_rt_release();
}

/* Every failure a code and a message. */
static void test_failures(tc_t *t) {
  zsq_rt_stats_t st;
  char err[512];
  struct timespec t0;
  int rc;

  /* no sysfs entry at all */
  board(t, 1, 1, BUF_BYTES);
  setenv("ZSQ_SYSFS", at("nothing"), 1);
  CHECK(run(t, 1, &st, err, sizeof err) == ZSQ_RT_ERR_DEVICE);
  CHECK(strstr(err, "u-dma-buf") != NULL && strstr(err, "nothing") != NULL);
  zsq_fake_setenv(g_fake);
  /* phys_addr missing; size not a number */
  rename(at("sys/u-dma-buf/udmabuf0/phys_addr"), at("phys_addr.saved"));
  CHECK(run(t, 1, &st, err, sizeof err) == ZSQ_RT_ERR_DEVICE);
  rename(at("phys_addr.saved"), at("sys/u-dma-buf/udmabuf0/phys_addr"));
  write_text(at("sys/u-dma-buf/udmabuf0/size"), "lots\n");
  CHECK(run(t, 1, &st, err, sizeof err) == ZSQ_RT_ERR_DEVICE);
  /* the size is decimal: 4194304 bytes cannot hold a 5 MiB arena (read as hex it would be
   * 68,764,420 and the run would go on) */
  write_text(at("sys/u-dma-buf/udmabuf0/size"), "4194304\n");
  {
    zsq_rt_program_t big = t->p;
    uint64_t *big_arena = (uint64_t *)calloc(5u << 17, 8);
    zsq_rt_range_t all = {0, 5 << 17};
    big.arena_words = 5 << 17;
    memcpy(big_arena, t->c->arena_in, (size_t)t->p.arena_words * 8);
    rc = zsq_rt_run(&big, big_arena, &st, err, sizeof err);
    CHECK(rc == ZSQ_RT_ERR_NOMEM && strstr(err, "4194304") != NULL);
    rc = zsq_rt_run_io(&big, big_arena, &t->in, 1, &all, 0, &st, err, sizeof err);
    CHECK(rc == ZSQ_RT_ERR_NOMEM);
    free(big_arena);
  }
  /* device nodes missing: the UIO node, the buffer node, an explicit interrupt node */
  setenv("ZSQ_UIO", at("missing-uio"), 1);
  CHECK(run(t, 1, &st, err, sizeof err) == ZSQ_RT_ERR_DEVICE);
  CHECK(strstr(err, "missing-uio") != NULL);
  zsq_fake_setenv(g_fake);
  setenv("ZSQ_UDMABUF_DEV", at("missing-buf"), 1);
  CHECK(run(t, 1, &st, err, sizeof err) == ZSQ_RT_ERR_DEVICE);
  CHECK(strstr(err, "missing-buf") != NULL);
  zsq_fake_setenv(g_fake);
  setenv("ZSQ_UIO_IRQ", at("missing-irq"), 1);
  CHECK(run(t, 1, &st, err, sizeof err) == ZSQ_RT_ERR_DEVICE);
  CHECK(strstr(err, "missing-irq") != NULL);
  setenv("ZSQ_UIO_IRQ", at("uio0"), 1); /* a plain file cannot deliver interrupts */
  CHECK(run(t, 1, &st, err, sizeof err) == ZSQ_RT_ERR_DEVICE);
  CHECK(strstr(err, "not an interrupt node") != NULL);
  zsq_fake_setenv(g_fake);
  /* bad environment values */
  setenv("ZSQ_TIMEOUT_MS", "soon", 1);
  CHECK(run(t, 1, &st, err, sizeof err) == ZSQ_RT_ERR_ARG && strstr(err, "ZSQ_TIMEOUT_MS") != NULL);
  unsetenv("ZSQ_TIMEOUT_MS");
  setenv("ZSQ_IRQ", "yes", 1);
  CHECK(run(t, 1, &st, err, sizeof err) == ZSQ_RT_ERR_ARG && strstr(err, "ZSQ_IRQ") != NULL);
  unsetenv("ZSQ_IRQ");
  /* after all that, the board works */
  RUN_OK(t, 1, &st);

  /* a hung IP: interrupt wait, then polling; the next run finds it busy; a reset helps */
  setenv("ZSQ_TIMEOUT_MS", "150", 1);
  zsq_fake_set_mode(g_fake, ZSQ_FAKE_HANG);
  clock_gettime(CLOCK_MONOTONIC, &t0);
  CHECK(run(t, 1, &st, err, sizeof err) == ZSQ_RT_ERR_TIMEOUT);
  CHECK(strstr(err, "no ap_done") != NULL && strstr(err, "150 ms") != NULL &&
        strstr(err, "interrupt") != NULL);
  CHECK(elapsed_ms(&t0) >= 140 && elapsed_ms(&t0) < 5000);
  CHECK(run(t, 1, &st, err, sizeof err) == ZSQ_RT_ERR_DEVICE && strstr(err, "busy") != NULL);
  zsq_fake_set_mode(g_fake, ZSQ_FAKE_NORMAL); /* like reprogramming the PL */
  RUN_OK(t, 1, &st);
  zsq_rt_release();
  setenv("ZSQ_IRQ", "0", 1);
  zsq_fake_set_mode(g_fake, ZSQ_FAKE_HANG);
  CHECK(run(t, 1, &st, err, sizeof err) == ZSQ_RT_ERR_TIMEOUT);
  CHECK(strstr(err, "polling") != NULL);
  zsq_fake_set_mode(g_fake, ZSQ_FAKE_NORMAL);
  zsq_rt_release();
  unsetenv("ZSQ_IRQ");

  /* the IP reports what it can: ap_done without cycles_ap_vld, too few cycles */
  zsq_fake_set_mode(g_fake, ZSQ_FAKE_NOVLD);
  CHECK(run(t, 1, &st, err, sizeof err) == ZSQ_RT_ERR_ENGINE);
  CHECK(strstr(err, "cycles_ap_vld") != NULL);
  zsq_fake_set_mode(g_fake, ZSQ_FAKE_SHORT);
  CHECK(run(t, 1, &st, err, sizeof err) == ZSQ_RT_ERR_ENGINE);
  CHECK(strstr(err, "counted 1 cycles") != NULL);
  zsq_fake_set_mode(g_fake, ZSQ_FAKE_NORMAL);
  RUN_OK(t, 1, &st);
  zsq_rt_release();

  /* an interrupt line that never fires (a pty nobody writes to): the IP finishes, the
   * wait times out and says so */
  {
    int m = posix_openpt(O_RDWR | O_NOCTTY);
    char pts[128];
    if (m >= 0 && grantpt(m) == 0 && unlockpt(m) == 0 && ptsname_r(m, pts, sizeof pts) == 0) {
      setenv("ZSQ_UIO_IRQ", pts, 1);
      CHECK(run(t, 1, &st, err, sizeof err) == ZSQ_RT_ERR_TIMEOUT);
      CHECK(strstr(err, "ap_done is set but no interrupt arrived") != NULL);
      zsq_rt_release();
      zsq_fake_setenv(g_fake);
    }
    if (m >= 0) close(m);
  }
  unsetenv("ZSQ_TIMEOUT_MS");

  /* ranges: checked before anything moves (the same checks as the csim backend's) */
  {
    zsq_rt_range_t r[2];
    load_input(t, 1);
    r[0].word = t->p.arena_words - 2, r[0].words = 3; /* past the end */
    CHECK(zsq_rt_run_io(&t->p, t->arena, r, 1, &t->out, 1, &st, err, sizeof err) == ZSQ_RT_ERR_ARG);
    CHECK(strstr(err, "outside the arena") != NULL);
    r[0].word = -1, r[0].words = 1;
    CHECK(zsq_rt_run_io(&t->p, t->arena, &t->in, 1, r, 1, &st, err, sizeof err) == ZSQ_RT_ERR_ARG);
    r[0] = t->in, r[0].words -= 1; /* misses the input's last word */
    CHECK(zsq_rt_run_io(&t->p, t->arena, r, 1, &t->out, 1, &st, err, sizeof err) == ZSQ_RT_ERR_ARG);
    CHECK(strstr(err, "not inside the input ranges") != NULL);
    r[0] = t->in, r[0].words = 1; /* split in two adjacent ranges: fine */
    r[1] = t->in, r[1].word += 1, r[1].words -= 1;
    CHECK(zsq_rt_run_io(&t->p, t->arena, r, 2, &t->out, 1, &st, err, sizeof err) == ZSQ_RT_OK);
    CHECK(result_ok(t, 1));
    r[0] = t->in; /* an output no STORE writes: the input */
    load_input(t, 1);
    CHECK(zsq_rt_run_io(&t->p, t->arena, &t->in, 1, r, 1, &st, err, sizeof err) == ZSQ_RT_ERR_ARG);
    CHECK(strstr(err, "not all inside tensors the program stores") != NULL);
    CHECK(zsq_rt_run_io(&t->p, t->arena, NULL, 1, &t->out, 1, &st, err, sizeof err) == ZSQ_RT_ERR_ARG);
    CHECK(zsq_rt_run_io(&t->p, t->arena, &t->in, -1, &t->out, 1, &st, err, sizeof err) == ZSQ_RT_ERR_ARG);
    CHECK(zsq_rt_run_io(&t->p, NULL, &t->in, 1, &t->out, 1, &st, err, sizeof err) == ZSQ_RT_ERR_ARG);
  }
  zsq_rt_release();
}

int main(int argc, char **argv) {
  static test_case_t cases[MAX_CASES];
  static tc_t tcs[MAX_CASES];
  int n, i;
  if (argc != 2) {
    fprintf(stderr, "usage: %s <dir>\n", argv[0]);
    return 2;
  }
  n = read_cases(argv[1], cases, MAX_CASES);
  if (n < 1) return 1;
  snprintf(g_base, sizeof g_base, "zsq_fake_board_XXXXXX");
  if (!mkdtemp(g_base)) return 1;
  CHECK(strcmp(zsq_rt_backend(), "zynq") == 0);
  for (i = 0; i < n; i++) {
    tc_t *t = &tcs[i];
    zsqd_timing_t tm;
    zsqd_stats_t sst;
    t->c = &cases[i];
    t->p = case_program(t->c);
    CHECK(t->c->in_base >= 0);
    t->in.word = t->c->in_base;
    t->in.words = t->c->in_words;
    t->out.word = t->c->out_base;
    t->out.words = out_words(t->c);
    t->arena = (uint64_t *)malloc((size_t)t->p.arena_words * 8);
    t->ref = (uint64_t *)malloc((size_t)t->p.arena_words * 8);
    if (!t->arena || !t->ref) return 1;
    /* the reference: the engine's simulation on the caller's arena, in place (csim) */
    memcpy(t->ref, t->c->arena_in, (size_t)t->p.arena_words * 8);
    tm.rd_latency = t->c->rd_latency, tm.wr_latency = t->c->wr_latency;
    tm.outstanding = t->c->outstanding, tm.beat_x100 = t->c->beat_x100;
    memset(&sst, 0, sizeof sst);
    CHECK(zsqd_run(t->c->insn, t->c->n_insn, t->c->wgt, t->c->wgt_words, t->ref,
                   t->p.arena_words, &tm, NULL, &sst, NULL, 0) == 0);
    t->ref_cycles = sst.cycles;
    test_success(t);
  }
  if (n >= 2) test_two_programs(&tcs[0], &tcs[1]);
  test_failures(&tcs[0]);
  zsq_rt_release();
  if (g_fake) zsq_fake_close(g_fake);
  for (i = 0; i < n; i++) {
    free(tcs[i].arena);
    free(tcs[i].ref);
    free_case(&cases[i]);
  }
  if (g_failures) fprintf(stderr, "%d check(s) failed\n", g_failures);
  else printf("test_zynq: ok\n");
  return g_failures ? 1 : 0;
}
