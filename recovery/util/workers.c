/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Worker pools: start n threads on one function, wait for them, and keep
 * the first error any of them met.
 */
#include "recovery/util/util.h"

void
first_error_init (struct first_error *fe)
{
  memset (fe, 0, sizeof *fe);
  pthread_mutex_init (&fe->lock, NULL);
}

void
first_error_destroy (struct first_error *fe)
{
  pthread_mutex_destroy (&fe->lock);
}

void
first_error_record (struct first_error *fe)
{
  pthread_mutex_lock (&fe->lock);
  if (!fe->failed) {
    fe->err = error_errno ();
    snprintf (fe->msg, sizeof fe->msg, "%s", error_msg ());
    fe->failed = true;
  }
  pthread_mutex_unlock (&fe->lock);
}

void
first_error_restore (struct first_error *fe)
{
  error_restore (fe->err, fe->msg);
}

void
run_workers (int n, void *(*fn) (void *), void *arg)
{
  pthread_t th[64];
  int i, started;

  if (n < 1) n = 1;
  if (n > 64) n = 64;
  for (started = 0; started < n; started++)
    if (pthread_create (&th[started], NULL, fn, arg) != 0)
      break;
  if (started == 0)
    fn (arg);
  for (i = 0; i < started; i++)
    pthread_join (th[i], NULL);
}
