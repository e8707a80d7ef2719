/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * What a hostile NFS server's READDIR replies can put in a listing
 * (io-nfs.c's readdir_cb, driven with replies made here, no server):
 *  - only names of one component: "a/b", "../x", a name with a NUL, a
 *    huge one, "." and ".." are left out (joined to the directory listed
 *    they would name something outside it);
 *  - a server that lists for ever (entries in every reply, never eof)
 *    fails the listing after IO_LIST_MAX entries instead of keeping the
 *    caller and growing without end.
 */
#include "recovery/repo/io-nfs.c"

#include <assert.h>

/* One READDIR reply of the names in names (lens: their lengths). */
static void
reply (struct listing *l, struct call *k, const char *const *names,
       const size_t *lens, size_t n, bool eof)
{
  entry4 *e = xcalloc (n ? n : 1, sizeof *e);
  nfs_resop4 op;
  COMPOUND4res res;

  memset (&op, 0, sizeof op);
  memset (&res, 0, sizeof res);
  for (size_t i = 0; i < n; i++) {
    e[i].cookie = l->cookie + i + 1;
    e[i].name.utf8string_val = (char *) names[i];
    e[i].name.utf8string_len = lens[i];
    e[i].nextentry = i + 1 < n ? &e[i + 1] : NULL;
  }
  op.resop = OP_READDIR;
  op.nfs_resop4_u.opreaddir.status = NFS4_OK;
  op.nfs_resop4_u.opreaddir.READDIR4res_u.resok4.reply.entries = n ? e : NULL;
  op.nfs_resop4_u.opreaddir.READDIR4res_u.resok4.reply.eof = eof;
  res.status = NFS4_OK;
  res.resarray.resarray_len = 1;
  res.resarray.resarray_val = &op;
  call_init (k, K_NONE);
  k->ptr = l;
  readdir_cb (NULL, RPC_STATUS_SUCCESS, &res, k);
  free (e);
}

static void
test_names (void)
{
  static char huge[300];
  const char *names[] = { "ok1", "a/b", "../x", ".", "..", "n\0ul", huge,
                          "", "ok2" };
  size_t lens[] = { 3, 3, 4, 1, 2, 4, sizeof huge, 0, 3 };
  struct listing l = { .cap = 64 };
  struct call k;

  memset (huge, 'a', sizeof huge);
  l.v = xmalloc (l.cap * sizeof *l.v);
  reply (&l, &k, names, lens, 9, true);
  assert (k.res == 0 && l.eof);
  assert (l.len == 2 && strcmp (l.v[0], "ok1") == 0 &&
          strcmp (l.v[1], "ok2") == 0 && l.v[2] == NULL);
  for (size_t i = 0; i < l.len; i++)
    free (l.v[i]);
  free (l.v);
}

static void
test_endless (void)
{
  enum { PER = 4096 };
  const char *names[PER];
  size_t lens[PER];
  struct listing l = { .cap = 64 };
  struct call k;
  size_t rounds = 0;

  for (size_t i = 0; i < PER; i++) {
    names[i] = "same";
    lens[i] = 4;
  }
  l.v = xmalloc (l.cap * sizeof *l.v);
  /* what list4 does: READDIR until eof, or until a reply fails */
  do {
    reply (&l, &k, names, lens, PER, false);
    rounds++;
  } while (k.res >= 0 && rounds < 2 * (IO_LIST_MAX / PER) + 2);
  assert (k.res == -EFBIG);
  assert (rounds <= IO_LIST_MAX / PER + 1);
  for (size_t i = 0; i < l.len; i++)
    free (l.v[i]);
  free (l.v);
}

int
main (void)
{
  test_names ();
  test_endless ();
  printf ("test-nfs-listing: ok\n");
  return 0;
}
