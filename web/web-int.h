/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Inside web/: a job's process and the actions it runs (jobs.c,
 * actions.c).
 */
#ifndef BOOTBACK_WEB_INT_H
#define BOOTBACK_WEB_INT_H

#include <pthread.h>

#include "web/web.h"

/* A running job, in its own process (jobs.c). */
struct web_job {
  int64_t id;
  const struct web_opts *o;
  struct catalog *cat;           /* the job's connection */
  struct catalog *pcat;          /* progress's, any thread, under lock */
  pthread_mutex_t lock;
  char error[1024];              /* why it failed ("" : the last error) */
};

/* Record the job's progress (phase NULL: unchanged). Any thread. */
void web_job_progress (struct web_job *j, uint64_t done, uint64_t total,
                       const char *phase);

/* An action of POST /api/v1/jobs (actions.c).  run: 0 done (*result set
 * or not), -1 failed (j->error, else the last error, says why).  role:
 * the least a token needs to start it (web.h). */
struct web_action {
  const char *name;
  enum web_role role;
  int (*run) (struct web_job *j, json_t *args, json_t **result);
};

/* The body of POST /api/v1/jobs checked (actions.c): the action in *a and
 * its arguments (the body without "action"), or NULL with the reason in
 * why (a 400): not JSON, not an object, no or an unknown action, an
 * unknown key, a wrong type, a name with '/' or "..", a migrate target
 * that is not one of o's migrate_dirs (one that is: replaced in the
 * arguments by that directory, resolved), a lab-up definition that runs a
 * host program, boots a host file or publishes a port. */
json_t *web_action_check (const struct web_opts *o, const char *body, size_t len,
                          const struct web_action **a, char *why, size_t n);

/* The least role a token needs for action a with args: the action's,
 * admin for a stop that discards (the guest's writes since recovery are
 * deleted, as prune and gc delete). */
enum web_role web_action_role (const struct web_action *a, json_t *args);

/* A migrate job's to, when it runs: one of o's migrate_dirs (resolved at
 * the request) that still resolves to itself; else false with why (a
 * link put on its path since). */
bool web_migrate_dir_ok (const struct web_opts *o, const char *to, char *why,
                         size_t n);

/* {"id": ID, "href": "/api/v1/jobs/ID"} */
json_t *web_job_ref (int64_t id);

#endif /* BOOTBACK_WEB_INT_H */
