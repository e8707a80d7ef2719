/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * This host's settings of instant recovery from the environment
 * (bootback.pod, ENVIRONMENT): the CLI and bootback web's jobs read them
 * alike.
 */
#include "recovery/instant/instant.h"

/* A size from the environment; 0 if unset or not a size (the library's
 * default then). */
static int64_t
env_size (const char *name)
{
  const char *e = getenv (name);
  int64_t v;

  if (!e || !*e)
    return 0;
  v = parse_size (e);
  error_clear ();
  return v > 0 ? v : 0;
}

void
instant_opts_env (struct instant_opts *o)
{
  const char *t = getenv ("BOOTBACK_DOMAIN_TYPE");
  const char *e = getenv ("BOOTBACK_OVERLAY_MIN_FREE");

  o->domain_type = t && *t ? t : NULL;
  if (e && *e) {
    int64_t v = parse_size (e);
    error_clear ();
    /* 0 is "no minimum", which the opts spell < 0 (0 is the default). */
    if (v >= 0)
      o->overlay_min_free = v > 0 ? v : -1;
  }
}

void
instant_migrate_opts_env (struct instant_migrate_opts *o)
{
  const char *mode = getenv ("BOOTBACK_MIGRATE_MODE");

  o->full_copy = mode && strcmp (mode, "full") == 0;
  o->granularity = env_size ("BOOTBACK_MIGRATE_GRANULARITY");
  o->buf_size = env_size ("BOOTBACK_MIGRATE_BUF_SIZE");
  o->bandwidth = env_size ("BOOTBACK_MIGRATE_BANDWIDTH");
}
