/*
 * zsq_config_select.h - include the generated zsq_config.h when it is on the include
 * path, else zsq_config_default.h. Defines ZSQ_CONFIG_IS_DEFAULT accordingly.
 */
#ifndef ZSQ_CONFIG_SELECT_H
#define ZSQ_CONFIG_SELECT_H

#if defined(__has_include)
#if __has_include("zsq_config.h")
#include "zsq_config.h"
#define ZSQ_CONFIG_IS_DEFAULT 0
#endif
#endif

#ifndef ZSQ_CONFIG_IS_DEFAULT
#include "zsq_config_default.h"
#define ZSQ_CONFIG_IS_DEFAULT 1
#endif

#endif /* ZSQ_CONFIG_SELECT_H */
