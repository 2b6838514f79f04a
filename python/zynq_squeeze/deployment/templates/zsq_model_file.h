/*
 * zsq_model_file.h - read and check a zynq-squeeze model file (model.zsqm). Internal to
 * the executor (zsq_model_api.c); the format is described in deployment/model_file.py:
 * a 64-byte header (magic "ZSQMODEL", u32 version 1, u32 n_sections, u64 file_bytes,
 * u64 model_id, u32 CRC-32 of everything after the header, zeros), a table of 64-byte
 * entries (char name[48], u64 offset, u64 bytes), 64-byte aligned section data.
 */
#ifndef ZSQ_MODEL_FILE_H
#define ZSQ_MODEL_FILE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define ZSQ_MF_HEADER_BYTES 64
#define ZSQ_MF_ENTRY_BYTES 64
#define ZSQ_MF_NAME_BYTES 48
#define ZSQ_MF_ALIGN 64
#define ZSQ_MF_VERSION 1
#define ZSQ_MF_MAX_SECTIONS 65536

typedef struct zsq_mf {
  uint8_t *data;         /* the whole file, 64-byte aligned, owned (zsq_mf_close frees it) */
  uint64_t bytes;
  uint64_t model_id;
  uint32_t n_sections;
} zsq_mf_t;

/* Read the whole file at `path` into one aligned buffer and check every header and table
 * field and the CRC-32, then that its model id is `expect_id`. Returns 0, or
 * ZSQ_MODEL_ERR_FILE / _FORMAT / _MISMATCH / _NOMEM (zsq_model.h) with a message in err
 * naming what is wrong; on failure *mf holds nothing. */
int zsq_mf_open(const char *path, uint64_t expect_id, zsq_mf_t *mf, char *err, size_t errlen);

/* The section called `name` (its size in *bytes if bytes != NULL), or NULL. */
const void *zsq_mf_section(const zsq_mf_t *mf, const char *name, uint64_t *bytes);

void zsq_mf_close(zsq_mf_t *mf);

/* zlib's CRC-32 of buf[0..n), continued from crc (start with 0). */
uint32_t zsq_mf_crc32(uint32_t crc, const uint8_t *buf, size_t n);

#ifdef __cplusplus
}
#endif

#endif /* ZSQ_MODEL_FILE_H */
