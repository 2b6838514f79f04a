/*
 * zsq_model_file.c - read and check a model file (see zsq_model_file.h). The file comes
 * from outside: every field is checked before it is used, sizes are compared without
 * overflow, and nothing is read outside the buffer. Never aborts.
 */
#define _FILE_OFFSET_BITS 64
#include "zsq_model_file.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "zsq_model.h"

static const char zsq_mf_magic[8] = {'Z', 'S', 'Q', 'M', 'O', 'D', 'E', 'L'};

/* Little-endian fields, whatever the host's byte order and alignment. */
static uint32_t zsq_mf_u32(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t zsq_mf_u64(const uint8_t *p) {
  return (uint64_t)zsq_mf_u32(p) | (uint64_t)zsq_mf_u32(p + 4) << 32;
}

uint32_t zsq_mf_crc32(uint32_t crc, const uint8_t *buf, size_t n) {
  /* reflected polynomial 0xEDB88320 (zlib); the table is built on first use */
  static uint32_t table[256];
  static int ready;
  if (!ready) {
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      table[i] = c;
    }
    ready = 1;
  }
  crc = ~crc;
  for (size_t i = 0; i < n; ++i) crc = table[(crc ^ buf[i]) & 0xFF] ^ (crc >> 8);
  return ~crc;
}

static int zsq_mf_fail(int code, char *err, size_t errlen, const char *path, const char *what) {
  if (err != NULL && errlen > 0) snprintf(err, errlen, "%s: %s", path, what);
  return code;
}

/* Check the header and table of the file in mf->data (mf->bytes long). */
static int zsq_mf_check(const zsq_mf_t *mf, const char *path, char *err, size_t errlen) {
  const uint8_t *d = mf->data;
  char msg[200];
  uint32_t n = zsq_mf_u32(d + 12);
  uint64_t table_end = ZSQ_MF_HEADER_BYTES + (uint64_t)ZSQ_MF_ENTRY_BYTES * n;
  if (n > ZSQ_MF_MAX_SECTIONS || table_end > mf->bytes) {
    snprintf(msg, sizeof msg, "section table of %lu entries does not fit in the file",
             (unsigned long)n);
    return zsq_mf_fail(ZSQ_MODEL_ERR_FORMAT, err, errlen, path, msg);
  }
  uint32_t want = zsq_mf_u32(d + 32);
  uint32_t got = zsq_mf_crc32(0, d + ZSQ_MF_HEADER_BYTES, (size_t)(mf->bytes - ZSQ_MF_HEADER_BYTES));
  if (want != got) {
    snprintf(msg, sizeof msg, "CRC-32 mismatch: header 0x%08lx, contents 0x%08lx (the file "
             "is damaged)", (unsigned long)want, (unsigned long)got);
    return zsq_mf_fail(ZSQ_MODEL_ERR_FORMAT, err, errlen, path, msg);
  }
  uint64_t end = table_end; /* sections follow the table, in order, without overlap */
  for (uint32_t i = 0; i < n; ++i) {
    const uint8_t *e = d + ZSQ_MF_HEADER_BYTES + (size_t)ZSQ_MF_ENTRY_BYTES * i;
    const char *name = (const char *)e;
    size_t len = 0;
    while (len < ZSQ_MF_NAME_BYTES && e[len] != 0) {
      if (e[len] < 0x21 || e[len] >= 0x7F) len = ZSQ_MF_NAME_BYTES; /* not printable */
      else ++len;
    }
    int padded = len > 0 && len < ZSQ_MF_NAME_BYTES;
    for (size_t k = len; padded && k < ZSQ_MF_NAME_BYTES; ++k) padded = e[k] == 0;
    if (!padded) {
      snprintf(msg, sizeof msg, "section %lu: name is empty, not NUL-terminated, not "
               "NUL-padded or not printable ASCII", (unsigned long)i);
      return zsq_mf_fail(ZSQ_MODEL_ERR_FORMAT, err, errlen, path, msg);
    }
    for (uint32_t j = 0; j < i; ++j)
      if (strcmp(name, (const char *)(d + ZSQ_MF_HEADER_BYTES + (size_t)ZSQ_MF_ENTRY_BYTES * j)) == 0) {
        snprintf(msg, sizeof msg, "section %lu: duplicate name '%s'", (unsigned long)i, name);
        return zsq_mf_fail(ZSQ_MODEL_ERR_FORMAT, err, errlen, path, msg);
      }
    uint64_t off = zsq_mf_u64(e + 48), size = zsq_mf_u64(e + 56);
    if (off % ZSQ_MF_ALIGN != 0) {
      snprintf(msg, sizeof msg, "section '%s': offset %llu is not %d-byte aligned", name,
               (unsigned long long)off, ZSQ_MF_ALIGN);
      return zsq_mf_fail(ZSQ_MODEL_ERR_FORMAT, err, errlen, path, msg);
    }
    if (off < end || off > mf->bytes || size > mf->bytes - off) {
      snprintf(msg, sizeof msg, "section '%s': bytes [%llu, %llu+%llu) overlap the table or a "
               "previous section or lie outside the file", name, (unsigned long long)off,
               (unsigned long long)off, (unsigned long long)size);
      return zsq_mf_fail(ZSQ_MODEL_ERR_FORMAT, err, errlen, path, msg);
    }
    end = off + size;
  }
  return ZSQ_MODEL_OK;
}

int zsq_mf_open(const char *path, uint64_t expect_id, zsq_mf_t *mf, char *err, size_t errlen) {
  char msg[200];
  uint8_t head[ZSQ_MF_HEADER_BYTES];
  struct stat st;
  if (path == NULL || mf == NULL) return zsq_mf_fail(ZSQ_MODEL_ERR_ARG, err, errlen, "(null)", "no path");
  memset(mf, 0, sizeof *mf);
  FILE *f = fopen(path, "rb");
  if (f == NULL) return zsq_mf_fail(ZSQ_MODEL_ERR_FILE, err, errlen, path, strerror(errno));
  if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
    fclose(f);
    return zsq_mf_fail(ZSQ_MODEL_ERR_FILE, err, errlen, path, "not a regular file");
  }
  uint64_t size = (uint64_t)st.st_size;
  if (size < ZSQ_MF_HEADER_BYTES || fread(head, 1, sizeof head, f) != sizeof head) {
    fclose(f);
    snprintf(msg, sizeof msg, "file is %llu bytes, shorter than the %d-byte header",
             (unsigned long long)size, ZSQ_MF_HEADER_BYTES);
    return zsq_mf_fail(ZSQ_MODEL_ERR_FORMAT, err, errlen, path, msg);
  }
  int code = ZSQ_MODEL_ERR_FORMAT;
  uint64_t file_bytes = zsq_mf_u64(head + 16);
  int reserved_zero = 1;
  for (int i = 36; i < ZSQ_MF_HEADER_BYTES; ++i) reserved_zero &= head[i] == 0;
  if (memcmp(head, zsq_mf_magic, sizeof zsq_mf_magic) != 0) {
    snprintf(msg, sizeof msg, "bad magic: not a zynq-squeeze model file");
  } else if (zsq_mf_u32(head + 8) != ZSQ_MF_VERSION) {
    snprintf(msg, sizeof msg, "format version %lu (this executor reads %d)",
             (unsigned long)zsq_mf_u32(head + 8), ZSQ_MF_VERSION);
  } else if (!reserved_zero) {
    snprintf(msg, sizeof msg, "reserved header bytes are not zero");
  } else if (file_bytes != size) {
    snprintf(msg, sizeof msg, "file is %llu bytes but its header says %llu (truncated or "
             "extended)", (unsigned long long)size, (unsigned long long)file_bytes);
  } else if (size > (uint64_t)SIZE_MAX - ZSQ_MF_ALIGN) {
    code = ZSQ_MODEL_ERR_NOMEM;
    snprintf(msg, sizeof msg, "file of %llu bytes does not fit in this address space",
             (unsigned long long)size);
  } else {
    code = ZSQ_MODEL_OK;
  }
  if (code != ZSQ_MODEL_OK) {
    fclose(f);
    return zsq_mf_fail(code, err, errlen, path, msg);
  }
  void *buf = NULL;
  /* one aligned buffer for the whole file: sections are 64-byte aligned in it, so the
   * constants can be used in place by TVM's operators (which assume 64-byte alignment) */
  if (posix_memalign(&buf, ZSQ_MF_ALIGN, (size_t)size) != 0 || buf == NULL) {
    fclose(f);
    snprintf(msg, sizeof msg, "cannot allocate %llu bytes for the model", (unsigned long long)size);
    return zsq_mf_fail(ZSQ_MODEL_ERR_NOMEM, err, errlen, path, msg);
  }
  memcpy(buf, head, sizeof head);
  size_t rest = (size_t)size - sizeof head;
  size_t got = fread((uint8_t *)buf + sizeof head, 1, rest, f);
  fclose(f);
  if (got != rest) {
    free(buf);
    return zsq_mf_fail(ZSQ_MODEL_ERR_FILE, err, errlen, path, "short read");
  }
  mf->data = (uint8_t *)buf;
  mf->bytes = size;
  mf->model_id = zsq_mf_u64(head + 24);
  mf->n_sections = zsq_mf_u32(head + 12);
  code = zsq_mf_check(mf, path, err, errlen);
  if (code == ZSQ_MODEL_OK && mf->model_id != expect_id) {
    snprintf(msg, sizeof msg, "model id 0x%016llx is not this executor's 0x%016llx: the file "
             "belongs to another build", (unsigned long long)mf->model_id,
             (unsigned long long)expect_id);
    code = zsq_mf_fail(ZSQ_MODEL_ERR_MISMATCH, err, errlen, path, msg);
  }
  if (code != ZSQ_MODEL_OK) zsq_mf_close(mf);
  return code;
}

const void *zsq_mf_section(const zsq_mf_t *mf, const char *name, uint64_t *bytes) {
  if (mf == NULL || mf->data == NULL || name == NULL) return NULL;
  for (uint32_t i = 0; i < mf->n_sections; ++i) {
    const uint8_t *e = mf->data + ZSQ_MF_HEADER_BYTES + (size_t)ZSQ_MF_ENTRY_BYTES * i;
    if (strcmp((const char *)e, name) == 0) { /* names were checked NUL-terminated */
      if (bytes != NULL) *bytes = zsq_mf_u64(e + 56);
      return mf->data + zsq_mf_u64(e + 48);
    }
  }
  return NULL;
}

void zsq_mf_close(zsq_mf_t *mf) {
  if (mf == NULL) return;
  free(mf->data);
  memset(mf, 0, sizeof *mf);
}
