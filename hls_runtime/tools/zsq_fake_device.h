/*
 * zsq_fake_device.h - a simulated zsq_dae board for testing the zynq backend without one.
 *
 * The fake serves, under a root directory, what the backend opens on a board:
 *   <root>/uio0                       the IP's s_axilite registers: a 4 KiB file the
 *                                     backend maps like /dev/uio0 (env ZSQ_UIO)
 *   /dev/pts/N (link <root>/uio0.irq) the UIO interrupt: a pty whose 4-byte writes unmask
 *                                     and on which the fake writes the event count after
 *                                     ap_done, like a UIO node's read (env ZSQ_UIO_IRQ)
 *   <root>/<name>                     the u-dma-buf buffer (env ZSQ_UDMABUF_DEV)
 *   <root>/sys/u-dma-buf/<name>/      phys_addr (hex), size (decimal), dma_coherent and
 *                                     the sync_* attributes (env ZSQ_SYSFS=<root>/sys)
 * all as MAP_SHARED file mappings, so the backend may run in the same process (a thread
 * serves the device: tests/c/test_zynq.c) or in another one, even an ARM binary under
 * qemu-arm-static (tools/zsq_fake_device_main.c serves the files; <root>/env lists the
 * variables).
 *
 * When ap_start is written the fake reads the addresses and insn_count the backend wrote,
 * runs the engine's C simulation (zsqd_run) on the instructions, weights and arena found
 * at those addresses in the buffer, and sets the 64-bit cycle counter with cycles_ap_vld,
 * ISR's ap_done and ap_done | ap_idle; the interrupt event goes out when GIE and IER's
 * ap_done are set and the backend has unmasked. Not modelled: AP_CTRL's clear-on-read
 * ap_done and ISR's toggle on write (a plain file cannot see a write of the same value:
 * the fake clears ISR itself at the next start), caches (the files are coherent: the
 * backend's sync writes land in the attribute files, where tests can read the last one).
 *
 * Modes (zsq_fake_set_mode, or a word in <root>/mode, re-read every 20 ms):
 *   normal - as above; a program the simulation refuses ends like a failed IP run: ap_done
 *            without cycles_ap_vld (a deadlock: never done), the message in the stats
 *   hang   - takes the start, never finishes (leaving hang abandons the run: idle again)
 *   novld  - runs, then ap_done without cycles_ap_vld
 *   short  - runs, then reports 1 cycle (fewer than the instructions)
 */
#ifndef ZSQ_FAKE_DEVICE_H
#define ZSQ_FAKE_DEVICE_H

#include <stddef.h>
#include <stdint.h>

#include "zsq_dae_sim.h"

#ifdef __cplusplus
extern "C" {
#endif

enum { ZSQ_FAKE_NORMAL = 0, ZSQ_FAKE_HANG = 1, ZSQ_FAKE_NOVLD = 2, ZSQ_FAKE_SHORT = 3 };

typedef struct zsq_fake_config {
  const char *root;        /* directory of the files (created if missing) */
  const char *name;        /* buffer name; NULL: udmabuf0 */
  unsigned long long phys; /* physical address of the buffer; 0: 0x1f000000 */
  unsigned long long size; /* buffer bytes; 0: 4 MiB */
  int mode;                /* ZSQ_FAKE_* */
  int irq;                 /* 1: serve the interrupt pty */
  int sync_attrs;          /* 1: create the sync_* attributes (cacheable mapping) */
  zsqd_timing_t timing;    /* the simulation's HP-port model (the cycle count) */
} zsq_fake_config_t;

typedef struct zsq_fake_stats {
  long long starts, done;  /* ap_start seen; runs ended with ap_done */
  long long unmasks, events; /* unmask writes read; interrupt events sent */
  uint64_t insn, wgt, act_rd, act_wr; /* addresses of the last start */
  uint32_t insn_count;
  int64_t cycles;          /* of the last run */
  int sim_rc;              /* zsqd_run's code for the last run */
  char error[256];         /* why the last run failed ("" if it did not) */
} zsq_fake_stats_t;

typedef struct zsq_fake zsq_fake_t;

/* Creates the files and the pty; 0 or -1 with a message in err. */
int zsq_fake_open(const zsq_fake_config_t *cfg, zsq_fake_t **out, char *err, size_t errlen);
/* One look at the registers: serves a start, delivers a pending interrupt, re-reads the
 * mode file when due. Returns 1 if a run ended, 0 otherwise. */
int zsq_fake_step(zsq_fake_t *f);
/* A thread calling zsq_fake_step every 100 us until zsq_fake_stop; 0 or -1. */
int zsq_fake_start(zsq_fake_t *f);
void zsq_fake_stop(zsq_fake_t *f);
void zsq_fake_set_mode(zsq_fake_t *f, int mode);
void zsq_fake_get_stats(zsq_fake_t *f, zsq_fake_stats_t *st);
/* The buffer and register mappings (for tests to inspect) and the phys address. */
uint8_t *zsq_fake_buffer(zsq_fake_t *f);
volatile uint32_t *zsq_fake_regs(zsq_fake_t *f);
unsigned long long zsq_fake_phys(const zsq_fake_t *f);
/* "ZSQ_UIO=...\nZSQ_UIO_IRQ=...\n..." (the backend's environment for this device); also
 * written to <root>/env. zsq_fake_setenv sets them in this process. */
const char *zsq_fake_env(const zsq_fake_t *f);
void zsq_fake_setenv(const zsq_fake_t *f);
/* Stops the thread, unmaps, closes (the files stay). */
void zsq_fake_close(zsq_fake_t *f);
int zsq_fake_mode_from_name(const char *name); /* -1 if unknown */

#ifdef __cplusplus
}
#endif

#endif /* ZSQ_FAKE_DEVICE_H */
