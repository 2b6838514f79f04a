/* test_errors.c - hand-built programs: every malformed one gives an error code and a
 * message naming what is wrong, never an abort; the smallest valid program runs. */
#include "zsq_test_util.h"
#include "zsq_isa_derived.h"

static uint64_t arena[256];
static uint64_t wgt[64];

/* `in` with the derived registers (zsq_isa_derived.h) SET before every instruction that
 * reads them, as the compiler emits them; returns the new length (out holds 64 words). */
static int64_t with_derived(const uint64_t *in, int64_t n, uint64_t *out) {
  int32_t regs[3][64];
  int64_t k = 0, i;
  memset(regs, 0, sizeof regs);
  for (i = 0; i < n; i++) {
    const int op = (int)(in[i] & 15u);
    if (op == ZSQ_OP_SET) {
      const int reg = (int)((in[i] >> 16) & 0xFFu);
      if (reg < 192) regs[reg >> 6][reg & 63] = (int32_t)(uint32_t)(in[i] >> 32);
    } else if (op != ZSQ_OP_FINISH) {
      const int m = op == ZSQ_OP_STORE ? 2 : (op <= ZSQ_OP_LOAD_PARAMS ? 0 : 1);
      int ids[8], j, nd;
      int64_t vals[8];
      nd = zsq_isa_derived(op, regs[m], ids, vals);
      for (j = 0; j < nd; j++) {
        out[k++] = insn_set(ids[j], (int32_t)vals[j]);
        regs[m][ids[j] & 63] = (int32_t)vals[j];
      }
    }
    out[k++] = in[i];
  }
  return k;
}

static int run(const uint64_t *insn, int64_t n, char *err, size_t errlen) {
  zsq_rt_program_t p = program_of(insn, n, wgt, 64, 256);
  return zsq_rt_run(&p, arena, NULL, err, errlen);
}

int main(void) {
  char err[256];
  zsq_rt_stats_t st;
  zsq_rt_program_t p;
  int code;

  CHECK(strcmp(zsq_rt_backend(), "csim") == 0);
  for (code = -110; code <= 0; code++) CHECK(zsq_rt_strerror(code) != NULL);
  CHECK(strcmp(zsq_rt_strerror(12345), "unknown error") == 0);

  { /* the smallest program: FINISH alone */
    const uint64_t prog[1] = {insn_op(ZSQ_OP_FINISH, 0)};
    p = program_of(prog, 1, wgt, 64, 256);
    memset(&st, 0x55, sizeof st);
    CHECK(zsq_rt_run(&p, arena, &st, err, sizeof err) == ZSQ_RT_OK);
    CHECK(st.cycles >= 1 && st.macs == 0 && st.wr_bytes == 0);
  }

  /* arguments */
  CHECK(zsq_rt_validate(NULL, err, sizeof err) == ZSQ_RT_ERR_ARG);
  CHECK(zsq_rt_run(NULL, arena, NULL, NULL, 0) == ZSQ_RT_ERR_ARG); /* err may be NULL */
  {
    const uint64_t prog[1] = {insn_op(ZSQ_OP_FINISH, 0)};
    p = program_of(prog, 1, wgt, 64, 256);
    CHECK(zsq_rt_run(&p, NULL, NULL, err, sizeof err) == ZSQ_RT_ERR_ARG);
    CHECK(strstr(err, "arena") != NULL);
    p.n_insn = 0;
    CHECK(zsq_rt_run(&p, arena, NULL, err, sizeof err) == ZSQ_RT_ERR_ARG);
    p = program_of(prog, 1, NULL, 64, 256);
    CHECK(zsq_rt_run(&p, arena, NULL, err, sizeof err) == ZSQ_RT_ERR_ARG);
    p = program_of(prog, 1, wgt, 0, 256);
    CHECK(zsq_rt_run(&p, arena, NULL, err, sizeof err) == ZSQ_RT_ERR_ARG);
    p = program_of(prog, 1, wgt, 64, 0);
    CHECK(zsq_rt_run(&p, arena, NULL, err, sizeof err) == ZSQ_RT_ERR_ARG);
    p = program_of(prog, 1, wgt, 64, 256);
    p.beat_x100 = 0;
    CHECK(zsq_rt_run(&p, arena, NULL, err, sizeof err) == ZSQ_RT_ERR_ARG);
    CHECK(strstr(err, "timing") != NULL);
    p = program_of(prog, 1, wgt, 64, 256);
    p.outstanding = 0;
    CHECK(zsq_rt_run(&p, arena, NULL, err, sizeof err) == ZSQ_RT_ERR_ARG);
  }

  { /* unknown opcodes: 0 and the reserved 9..14 */
    uint64_t prog[2] = {0, insn_op(ZSQ_OP_FINISH, 0)};
    int op;
    CHECK(run(prog, 2, err, sizeof err) == ZSQ_RT_ERR_INSN);
    CHECK(strstr(err, "instruction 0: unknown opcode 0") != NULL);
    for (op = 9; op <= 14; op++) {
      prog[0] = insn_op(op, 0);
      CHECK(run(prog, 2, err, sizeof err) == ZSQ_RT_ERR_INSN);
    }
  }
  { /* missing FINISH; FINISH before the end */
    const uint64_t a[1] = {insn_set(ZSQ_LW_ADDR, 0)};
    const uint64_t b[2] = {insn_op(ZSQ_OP_FINISH, 0), insn_set(ZSQ_LW_ADDR, 0)};
    CHECK(run(a, 1, err, sizeof err) == ZSQ_RT_ERR_INSN);
    CHECK(strstr(err, "does not end with FINISH") != NULL);
    CHECK(run(b, 2, err, sizeof err) == ZSQ_RT_ERR_INSN);
    CHECK(strstr(err, "FINISH before the end") != NULL);
  }
  { /* SET of a register of no module (id 192..255) */
    const uint64_t prog[2] = {insn_set(200, 1), insn_op(ZSQ_OP_FINISH, 0)};
    CHECK(run(prog, 2, err, sizeof err) == ZSQ_RT_ERR_INSN);
    CHECK(strstr(err, "register 200") != NULL);
  }
  { /* dependency flags towards no module: load has no prev, store no next */
    const uint64_t a[2] = {insn_op(ZSQ_OP_LOAD_WEIGHT, ZSQ_POP_PREV), insn_op(ZSQ_OP_FINISH, 0)};
    const uint64_t b[2] = {insn_op(ZSQ_OP_STORE, ZSQ_PUSH_NEXT), insn_op(ZSQ_OP_FINISH, 0)};
    CHECK(run(a, 2, err, sizeof err) == ZSQ_RT_ERR_INSN);
    CHECK(strstr(err, "load") != NULL);
    CHECK(run(b, 2, err, sizeof err) == ZSQ_RT_ERR_INSN);
    CHECK(strstr(err, "store") != NULL);
  }
  { /* a token pushed and never popped: load->compute */
    const uint64_t prog[5] = {insn_set(ZSQ_LW_ADDR, 0), insn_set(ZSQ_LW_WORDS, 8),
                              insn_op(ZSQ_OP_LOAD_WEIGHT, ZSQ_PUSH_NEXT), insn_op(ZSQ_OP_FINISH, 0)};
    CHECK(run(prog, 4, err, sizeof err) == ZSQ_RT_ERR_INSN);
    CHECK(strstr(err, "load->compute tokens: 1 pushed, 0 popped") != NULL);
  }
  { /* LOAD_WEIGHT beyond the weights (64 words) */
    const uint64_t prog[4] = {insn_set(ZSQ_LW_ADDR, 60), insn_set(ZSQ_LW_WORDS, 8),
                              insn_op(ZSQ_OP_LOAD_WEIGHT, 0), insn_op(ZSQ_OP_FINISH, 0)};
    CHECK(run(prog, 4, err, sizeof err) == ZSQ_RT_ERR_BLOB);
    CHECK(strstr(err, "instruction 2: LOAD_WEIGHT reads words [60, 68), weights have 64") != NULL);
  }
  { /* LOAD_INPUT of a 10x10x4-group tensor in a 256-word arena */
    const uint64_t prog[12] = {
        insn_set(ZSQ_LI_BASE, 0), insn_set(ZSQ_LI_H, 10),    insn_set(ZSQ_LI_W, 10),
        insn_set(ZSQ_LI_G, 4),    insn_set(ZSQ_LI_ROWS, 10), insn_set(ZSQ_LI_COLS, 10),
        insn_set(ZSQ_LI_NG, 4),   insn_set(ZSQ_LI_PITCH, 4), insn_op(ZSQ_OP_LOAD_INPUT, 0),
        insn_op(ZSQ_OP_FINISH, 0)};
    uint64_t full[64];
    CHECK(run(full, with_derived(prog, 10, full), err, sizeof err) == ZSQ_RT_ERR_ARENA);
    CHECK(strstr(err, "LOAD_INPUT reads words [0, 400), arena has 256") != NULL);
  }
  { /* a tile entirely in the padding reads nothing: not an arena error */
    const uint64_t prog[12] = {
        insn_set(ZSQ_LI_BASE, 0), insn_set(ZSQ_LI_H, 10),    insn_set(ZSQ_LI_W, 10),
        insn_set(ZSQ_LI_G, 4),    insn_set(ZSQ_LI_ROWS, 2),  insn_set(ZSQ_LI_COLS, 2),
        insn_set(ZSQ_LI_NG, 4),   insn_set(ZSQ_LI_Y0, -3),   insn_set(ZSQ_LI_PITCH, 4),
        insn_op(ZSQ_OP_LOAD_INPUT, 0), insn_op(ZSQ_OP_FINISH, 0)};
    uint64_t full[64];
    zsq_rt_program_t q = program_of(full, with_derived(prog, 11, full), wgt, 64, 256);
    CHECK(zsq_rt_validate(&q, err, sizeof err) == ZSQ_RT_OK);
    /* a derived register that does not match its operands is refused */
    q = program_of(prog, 11, wgt, 64, 256);
    CHECK(zsq_rt_validate(&q, err, sizeof err) == ZSQ_RT_ERR_INSN);
    CHECK(strstr(err, "derived register") != NULL);
  }
  { /* STORE of a tensor that does not fit the arena */
    const uint64_t prog[12] = {
        insn_set(ZSQ_ST_BASE, 200), insn_set(ZSQ_ST_H, 4),    insn_set(ZSQ_ST_W, 4),
        insn_set(ZSQ_ST_G, 4),      insn_set(ZSQ_ST_ROWS, 4), insn_set(ZSQ_ST_COLS, 4),
        insn_set(ZSQ_ST_NG, 4),     insn_set(ZSQ_ST_PITCH, 2), insn_op(ZSQ_OP_STORE, 0),
        insn_op(ZSQ_OP_FINISH, 0)};
    uint64_t full[64];
    CHECK(run(full, with_derived(prog, 10, full), err, sizeof err) == ZSQ_RT_ERR_ARENA);
    CHECK(strstr(err, "STORE writes words [200, 264), arena has 256") != NULL);
  }
  { /* operands whose product wraps: 2^22 * 2^22 * 2^20 = 2^64 is 0 in int64, and the trip
     * count register says 0 (the engine would skip the REQUANT). Fields are bounded before
     * they are multiplied: refused by the runtime's own check (the board has no other) */
    const uint64_t prog[6] = {insn_set(ZSQ_RQ_ROWS, 1 << 22), insn_set(ZSQ_RQ_COLS, 1 << 22),
                              insn_set(ZSQ_RQ_OG, 1 << 20),   insn_set(ZSQ_RQ_TRIPS, 0),
                              insn_op(ZSQ_OP_REQUANT, 0),     insn_op(ZSQ_OP_FINISH, 0)};
    zsq_rt_program_t q = program_of(prog, 6, wgt, 64, 256);
    CHECK(zsq_rt_validate(&q, err, sizeof err) == ZSQ_RT_ERR_INSN);
    CHECK(strstr(err, "instruction 4: REQUANT: bad geometry") != NULL);
  }
  { /* a STORE over a tensor a later LOAD_INPUT still reads (an 8-word tensor at word 0,
     * read after another STORE wrote 16 words at word 4): ZSQ_RT_ERR_ARENA naming both */
    const uint64_t prog[24] = {
        insn_set(ZSQ_ST_BASE, 0),   insn_set(ZSQ_ST_H, 2),      insn_set(ZSQ_ST_W, 4),
        insn_set(ZSQ_ST_G, 1),      insn_set(ZSQ_ST_ROWS, 2),   insn_set(ZSQ_ST_COLS, 4),
        insn_set(ZSQ_ST_NG, 1),     insn_set(ZSQ_ST_PITCH, 1),  insn_op(ZSQ_OP_STORE, 0),
        insn_set(ZSQ_ST_BASE, 4),   insn_set(ZSQ_ST_H, 4),      insn_op(ZSQ_OP_STORE, 0),
        insn_set(ZSQ_LI_BASE, 0),   insn_set(ZSQ_LI_H, 2),      insn_set(ZSQ_LI_W, 4),
        insn_set(ZSQ_LI_G, 1),      insn_set(ZSQ_LI_ROWS, 2),   insn_set(ZSQ_LI_COLS, 4),
        insn_set(ZSQ_LI_NG, 1),     insn_set(ZSQ_LI_PITCH, 1),  insn_op(ZSQ_OP_LOAD_INPUT, 0),
        insn_op(ZSQ_OP_FINISH, 0)};
    uint64_t full[64];
    const int64_t n = with_derived(prog, 22, full);
    zsq_rt_program_t q = program_of(full, n, wgt, 64, 256);
    int64_t second = -1, k2;
    for (k2 = 0; k2 < n; k2++)
      if ((full[k2] & 15u) == ZSQ_OP_STORE) second = k2; /* the last STORE */
    CHECK(zsq_rt_validate(&q, err, sizeof err) == ZSQ_RT_ERR_ARENA);
    {
      char want[96];
      snprintf(want, sizeof want, "instruction %lld: the tensor at arena word 0 (2x4x1 words",
               (long long)second);
      CHECK(strstr(err, want) != NULL);
      CHECK(strstr(err, "overlaps the tensor at word 4 (4x4x1 words") != NULL);
    }
    /* the same tensors one after the other (the second written after the read): fine */
    {
      const uint64_t seq[24] = {
          insn_set(ZSQ_ST_BASE, 0),   insn_set(ZSQ_ST_H, 2),      insn_set(ZSQ_ST_W, 4),
          insn_set(ZSQ_ST_G, 1),      insn_set(ZSQ_ST_ROWS, 2),   insn_set(ZSQ_ST_COLS, 4),
          insn_set(ZSQ_ST_NG, 1),     insn_set(ZSQ_ST_PITCH, 1),  insn_op(ZSQ_OP_STORE, 0),
          insn_set(ZSQ_LI_BASE, 0),   insn_set(ZSQ_LI_H, 2),      insn_set(ZSQ_LI_W, 4),
          insn_set(ZSQ_LI_G, 1),      insn_set(ZSQ_LI_ROWS, 2),   insn_set(ZSQ_LI_COLS, 4),
          insn_set(ZSQ_LI_NG, 1),     insn_set(ZSQ_LI_PITCH, 1),  insn_op(ZSQ_OP_LOAD_INPUT, 0),
          insn_set(ZSQ_ST_BASE, 4),   insn_set(ZSQ_ST_H, 4),      insn_op(ZSQ_OP_STORE, 0),
          insn_op(ZSQ_OP_FINISH, 0)};
      q = program_of(full, with_derived(seq, 22, full), wgt, 64, 256);
      CHECK(zsq_rt_validate(&q, err, sizeof err) == ZSQ_RT_OK);
    }
  }
  { /* engine errors pass through with the engine's message: params word 0 has mult 0 */
    const uint64_t prog[4] = {insn_set(ZSQ_LP_ADDR, 0), insn_set(ZSQ_LP_CHANNELS, 1),
                              insn_op(ZSQ_OP_LOAD_PARAMS, 0), insn_op(ZSQ_OP_FINISH, 0)};
    memset(wgt, 0, sizeof wgt);
    CHECK(run(prog, 4, err, sizeof err) == -6); /* ZSQD_ERR_REQUANT */
    CHECK(strstr(err, "instruction 2") != NULL);
    wgt[0] = (uint64_t)(1 << 14) << 32 | (uint64_t)14 << 54; /* mult 2^14, shift 14 (bits 59:54) */
    CHECK(run(prog, 4, err, sizeof err) == ZSQ_RT_OK);
  }
  if (g_failures) fprintf(stderr, "%d check(s) failed\n", g_failures);
  return g_failures ? 1 : 0;
}
