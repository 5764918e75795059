/*
 * oauth-lock: a Promela model of the cross-process refresh protocol (DESIGN.md §4), checked
 * with spin by scripts/test-model. It exists so that G1-G5 are proven for every interleaving
 * and every crash point of a few processes, not only sampled by the multi-process tests.
 *
 * What a model step stands for (DESIGN.md §4 step -> core function):
 *   idle options ........... §4 1 hot path      TokenSource::cached, access_token, reject
 *   unlocked read .......... §4 2.1-2.2         Leader::run, Backend::read (backend.rs read_record);
 *                                               a backoff in force -> Leader::backing_off
 *   try-lock ............... §4 2.3             Leader::try_lock -> lock.rs try_lock_exclusive:
 *                                               free -> taken at once (the locked read below);
 *                                               held -> the shared wait
 *   shared wait + re-read .. §4 2.3             Leader::after_release -> lock.rs wait_released:
 *                                               flock(LOCK_SH), granted only while nobody holds
 *                                               the lock exclusively (so every waiter of every
 *                                               process wakes at the holder's release), let go
 *                                               at once, nothing taken; then the unlocked re-read:
 *                                               needs_login -> stop; fresh -> adopt; a backoff in
 *                                               force (a holder whose refresh failed wrote it) ->
 *                                               backing_off; only otherwise queue for the lock
 *   lock + locked read ..... §4 2.3-2.5         the try-lock, or after the wait Leader::lock ->
 *                                               lock_exclusive (flock, blocking); Locked::read
 *                                               (the authoritative read), Leader::commit_held (a
 *                                               rotation this process holds), Mode::accepts,
 *                                               backing_off. G1 rests on this read alone
 *   present ................ §4 2.6             Leader::refresh_locked -> attempt ->
 *                                               Refresher::refresh, answered by
 *                                               cli/src/mock_server/state.rs refresh. The lock
 *                                               is held until the answer is in (a late answer
 *                                               after refresh_timeout is committed like any other)
 *   commit ................. §4 2.7             Leader::commit -> write_rotation (Locked::write,
 *                                               backend.rs write_atomically: the rename); a failed
 *                                               write keeps the rotation in Slot::held
 *   invalid_grant .......... §4 2.8             refresh_locked's refresh-token-error arm:
 *                                               Leader::recover, mark_dead
 *   transient, client error  §4 2.9             refresh_locked's Transient|Terminal arm:
 *                                               Leader::defer (the backoff), deferred_or
 *   install ................ §4 "never go back"  Slot::install(record, version, authoritative)
 *   login + save ........... §4 save            Store::save_inner
 *   die .................... G6                 SIGKILL: the slot, any answer in hand and any
 *                                               held rotation are lost, the kernel drops the
 *                                               flock; restart cold
 *   clock .................. time               access tokens go stale; a backoff runs out
 *
 * Granularity: each step is one atomic transition that touches shared state once (a read,
 * the lock, the provider, a rename). Local work next to it (deciding, installing into the
 * slot, unlocking after a rename) is folded into that step: no other process can observe
 * the difference, and a crash in between loses the same memory. A process may die before
 * any step, including while it waits for the lock. The locked read and the recommit of a
 * held rotation are one step: both happen under the lock, so nobody can tell them apart,
 * and a crash between them loses the held rotation exactly as a crash before the lock does.
 * A try-lock that fails is a step of its own (it reads the lock). The shared wait, its
 * release and the unlocked re-read after it are one step by default, taken at any moment
 * the lock is free. The shared hold is let go at once, and the record changes only under
 * the exclusive lock, at the step that also releases it (a commit, a backoff, needs_login,
 * a save), with one exception: a held rotation recommitted by a leader that then either
 * adopts it and releases at once, or refreshes because it is stale (a stale record only
 * sends a waiter to queue for the lock, where it ends up anyway). So a re-read made while
 * another process holds the lock has a counterpart made while the lock is free (just before
 * that process took it, or just after it let go) with the same outcome. -DSHARED_HOLD
 * models the three steps apart (a hold the others see: an exclusive lock waits and a
 * try-lock fails while any process holds it shared; several may hold it at once; a re-read
 * may come while another process holds the lock), and scripts/test-model checks that too.
 *
 * Abstractions (model/README.md says more): one model process = one OS process with one slot;
 * its threads are the single flight's followers and only wait for the leader's result. A
 * token pair (access + refresh token issued by one answer) is one number k; pair 1 is the
 * initial login. Time is a clock that makes the oldest issued access token stale (all tokens
 * have one lifetime counted from the request, so they go stale in issue order); "stale" is
 * "not fresh"; whether a stale token is already past its expiry (step 9) is a free choice.
 * A backoff (§4 step 9) is one bit of the record; the clock may end it at any moment (its
 * length is not modelled). Generations are only ever compared for equality (the revalidate
 * stat, G4, Leader::commit_held), so the model keeps exactly those equalities, one bit per
 * process, and not the numbers (which are printed only). A record is read in one step (the
 * rename gives readers the old or the new file, never a torn one). Not modelled: mirrors,
 * verify(), clear() (and the generations restarting at 1 after it), Busy, fork, the refresh
 * margin, failed saves, an unusable answer that carries a new refresh token (rotation_kept:
 * a commit followed by step 9, both of which are modelled).
 *
 * Switches (cpp, pass to `spin -a -DNAME`):
 *   N=<n>            processes (default 3); process 1 may also log in (save)
 *   MAXK=<k>         token pairs the provider may issue; beyond it answers
 *                    temporarily_unavailable (the search's bound; default 5)
 *   MAXCRASH, MAXREJECT, MAXSAVE   budgets per run (default 2, 1, 1)
 *   MAXCLIENTERR     answers "client error" (invalid_client, unauthorized_client, ...: the
 *                    provider refuses the client before it looks at the refresh token, which
 *                    stays unspent) per run (default 1)
 *   MAXFAIL          failed writes per run (default 1): a rename that did not happen (disk
 *                    full, an I/O error). A failed commit is held in the process
 *   GRACE            a reuse of a spent refresh token of a live family may get the same
 *                    answer again (mock --grace; the window may also have passed)
 *   LOSS             an answer may be lost after the provider rotated (a dropped connection,
 *                    or a refresher that outlived the hard cap refresh_timeout + 4 s and whose
 *                    request the provider had processed: the caller sees Transient)
 *   NAIVE_HELD_BY_GENERATION  a held rotation is recommitted only if the record's
 *                    generation is still the one it was refreshed from (the code's first rule;
 *                    the code now recommits while the record still holds, in state ok, the
 *                    refresh token it was refreshed from). Expected to FAIL STRICT_HELD
 *   STRICT_G1        G1 without the documented window's exemption (expected to FAIL when
 *                    crashes, LOSS or failed commits are on: the window is real and
 *                    reachable); STRICT_G3 and STRICT_G5 likewise for G3 and G5
 *   STRICT_HELD      a held rotation is dropped only when the record no longer holds, in state
 *                    ok, the refresh token it rotated (a login or another rotation superseded
 *                    it). Expected to FAIL with NAIVE_HELD_BY_GENERATION (see README)
 *   NAIVE_NOLOCK     the naive protocol without the lock (expected to FAIL G1)
 *   NAIVE_NOREREAD   the naive protocol with the lock but no re-read under it (expected to
 *                    FAIL G1)
 *   NAIVE_LOCKFILE   a lock that outlives a killed holder, as a lock file made with O_EXCL or
 *                    mkdir does (expected to FAIL G6: spin reports an invalid end state, the
 *                    other processes wait forever)
 *   NAIVE_TIMEOUT_UNLOCK  the leader may give up at refresh_timeout while its request is still
 *                    on its way: it unlocks (after step 9) and the request reaches the provider
 *                    later (expected to FAIL G1: a replay. The behaviour before issue 11, and
 *                    today's behaviour past the hard cap)
 *   NAIVE_CLIENT_DEAD     a client error marks the record needs_login like a refresh-token
 *                    error (the behaviour before issue 11; expected to FAIL G5b)
 *   NAIVE_IGNORE_BACKOFF  the reads do not look at the backoff (expected to FAIL the backoff
 *                    property)
 *   SHARED_HOLD      the shared wait as three steps (granted, let go, re-read), the hold seen
 *                    by the others (see Granularity); expected to pass like the default
 *   NAIVE_SHARED_REFRESH  a waiter that still finds the record stale after the shared wait
 *                    refreshes with what it read then, without the exclusive lock (expected
 *                    to FAIL G1: a replay)
 *   NAIVE_ALWAYS_QUEUE    a waiter queues for the exclusive lock whatever its re-read found,
 *                    as every waiter did before issue 14, one hand-off each (expected to FAIL
 *                    HANDOFF)
 *   FLEET            the fleet store (DESIGN.md §10, backend/postgres.rs): the lock belongs to
 *                    a database session, and a holder may lose its session (MAXCUT per run,
 *                    default 1) while it is alive and goes on: a network cut or a hang the
 *                    server ends after B, or a server restart. The server frees the lock at
 *                    once, so another process may take it while the old holder still runs.
 *                    B is longer than a holder's span from its locked read to the provider's
 *                    receipt of its request (lock 15 s + refresh 30 s + late answer 4 s < 60 s),
 *                    so the lock is freed only after the holder's request was answered. Its
 *                    writes are fenced as PgLocked::write does: on the dead session nothing
 *                    commits (Io); within B it may take the lock again (PgLocked::relock) and
 *                    make the write, which lands only if the row's stamp is still the one it
 *                    read under the lock (UPDATE ... WHERE stamp = seen), else Io. A rotation
 *                    whose commit is fenced off is held (Slot::held) like any failed commit.
 *                    Property FENCE: every write is made under the writer's own lock
 *   NAIVE_UNFENCED   FLEET with a commit that is neither on the lock's session nor conditional
 *                    on the stamp (a Redis SETNX/TTL lock and a plain SET): a holder whose lock
 *                    was freed writes the record it read (expected to FAIL G1: a replay)
 *   NAIVE_EARLY_FREE FLEET where the lock may be freed before the holder's request reached
 *                    the provider (a B shorter than the holder's span, or a holder hung longer
 *                    than B before it sends): expected to FAIL G1, since the fence guards the
 *                    record, not the provider
 *   GEN_IN_STATE     the generation counter (printouts only) in the state vector, as a
 *                    breadth-first search needs
 *   NO_G2 .. NO_G5, NO_BACKOFF, NO_ADOPT, NO_HANDOFF, NO_FENCE   leave a property out (the naive runs
 *                    keep only G1, so the violation spin reports is G1's)
 *
 * Properties (asserts at the step where each must hold; G3 and G5b an invariant): G1 no
 * replay, G2 one refresh per expiry, G3 no lost rotation, G4 no clobbered update, G5 dead is
 * dead once (and G5b: only refresh-token errors kill), the backoff, STRICT_HELD, G6 (no
 * invalid end state), and for issue 14's step 2.3: ADOPT (every adopted token is one the
 * provider would accept at the read: issued, the record's, fresh, its family not revoked)
 * and HANDOFF (a waiter whose re-read found a record that serves it never takes the
 * exclusive lock for it; N waiters behind one refresh cost one hand-off, no second refresh).
 */

#ifndef N
#define N 3
#endif
#ifndef MAXK
#define MAXK 5
#endif
#ifndef MAXCRASH
#define MAXCRASH 2
#endif
#ifndef MAXREJECT
#define MAXREJECT 1
#endif
#ifndef MAXSAVE
#define MAXSAVE 1
#endif
#ifndef MAXCLIENTERR
#define MAXCLIENTERR 1
#endif
#ifndef MAXFAIL
#define MAXFAIL 1
#endif

/* names for the counterexample printouts (spin -t) */
mtype = { access_token, reject_401, fresh_token, stale_token, needs_login, rotated_to,
          invalid_grant, unavailable, client_error, answer_not_committed,
          rejection_not_recorded, rotation_held_unsaved, nothing_in_hand, already_spent,
          not_spent, backing_off, no_backoff };

#define FRESH   1   /* Mode::Fresh  (access_token) */
#define REJECT  2   /* Mode::Reject (reject(token) after a 401) */

#define OK        1
#define INVALID   2 /* a refresh-token error: InvalidGrant, or Terminal invalid_refresh_token... */
#define TRANSIENT 3
#define CLIENTERR 4 /* Terminal about the client: invalid_client, unauthorized_client, ... */

#ifdef NAIVE_CLIENT_DEAD
#define CLIENT_MARKS_DEAD 1
#else
#define CLIENT_MARKS_DEAD 0
#endif

/* ---- the provider (cli/src/mock_server/state.rs: State::refresh, State::login) ---- */
byte next_k = 2;            /* the next pair it issues; pair 1 came from the first login */
bit  spent[MAXK + 1];       /* refresh token k was redeemed (rotated away) */
byte fam[MAXK + 1];         /* family of pair k (the pair its login issued; 0 = first) */
bit  revoked[MAXK + 1];     /* family revoked by reuse detection */
#ifdef GRACE
byte answer[MAXK + 1];      /* the pair that redeeming k issued, replayed within grace */
#endif

/* ---- ghost state: what the properties speak about ---- */
bit  lost[MAXK + 1];        /* the answer to redeeming k died: its receiver was killed
                               between receive and commit, or while holding it after a failed
                               commit, or dropped it; or, with LOSS, it never arrived */
byte inwin[MAXK + 1];       /* processes holding an answer to k, not yet committed (between
                               receive and commit, or held after a failed commit) */
bit  unsaved[MAXK + 1];     /* a process holds the answer to k after a failed commit */
bit  rejected[MAXK + 1];    /* the provider answered a refresh-token error to k */
bit  dead_lost[MAXK + 1];   /* ... and that was never recorded: its receiver was killed first,
                               or the needs_login write failed */
bit  clerr[MAXK + 1];       /* k got a client error and has not been redeemed since */
bit  famdl[MAXK + 1];       /* family f (fam[] value) had a rejection that was never recorded
                               (dead_lost): its record may stay ok after its revocation */

/* ---- the clock: access token k is stale iff k <= stale_upto ---- */
byte stale_upto = 0;
#define fresh(k) ((k) > stale_upto)

/* ---- the record <stem>.json: replaced by rename, so read and written in one step ---- */
/* "generation", for the printouts only: hidden, not part of the state. What the protocol
   does with generations is to compare them for equality, and that is kept exactly, as one bit
   per process in the masks below (every write clears them). A breadth-first search (the
   refutations) cannot have hidden variables: -DGEN_IN_STATE. */
#ifdef GEN_IN_STATE
byte f_gen = 1;
#else
hidden byte f_gen = 1;
#endif
byte f_k = 1;               /* access_token and refresh_token (pair k) */
bit  f_dead = 0;            /* "state": "needs_login" */
bit  f_backoff = 0;         /* "backoff" still in force (until_ms not yet reached) */

/* ---- the flock on <stem>.lock: 0 = free, else the holder; it dies with its holder ---- */
byte lock = 0;
/* ---- the shared flocks on it (§4 2.3's wait). One is granted only while nobody holds the
   lock exclusively, any number of processes may hold one at once, and its holder lets go of
   it at once. By default the grant and the release are one step (the hold is not seen by
   anyone). With -DSHARED_HOLD they are two: bit p-1 of shl is set while process p holds
   one, and an exclusive lock is granted only while none is held (a try-lock then fails
   because of a shared hold). ---- */
#ifdef SHARED_HOLD
byte shl = 0;
#define NO_SHARED (shl == 0)
#else
#define NO_SHARED true
#endif

/* ---- generations, as equalities (bit p-1 is process p) ---- */
byte rdok;                  /* the leader's read is the current record (r_gen == f_gen) */
byte seen;                  /* the slot holds the current record (c_gen == f_gen) */
byte hbok;                  /* no write since the process's failed commit (h_base == f_gen) */
#define bit(p) (1 << ((p) - 1))
#define mine(mask) (((mask) & bit(me)) != 0)
/* Locked::write / write_atomically: the rename; generation + 1, so every other read, slot
   and held rotation is now of an older generation. The writer's read is its own write. */
#define WROTE \
	f_gen++; rdok = bit(me); seen = 0; hbok = 0
#define READ \
	rdok = rdok | bit(me)

byte crashes, rejects, saves, clienterrs, fails;

#ifdef NAIVE_UNFENCED
#define FLEET 1
#endif
#ifdef NAIVE_EARLY_FREE
#define FLEET 1
#endif
#ifdef FLEET
#ifndef MAXCUT
#define MAXCUT 1
#endif
byte cuts;                  /* sessions lost by a living holder so far */
bit  cut[MAXK + 1];         /* ghost: the answer to redeeming k was in the hands of a holder
                               whose lock the server freed (G1's window, as a death is) */
#define CUTWIN(k) cut[k]
#else
#define CUTWIN(k) 0
#endif
/* FLEET, PgLocked::write: a holder's write lands if its session is alive (the transaction
   on the lock's session), or if it takes the lock again and the row's stamp is still the one
   it read under the lock (relock, then UPDATE ... WHERE stamp = seen; the stamp changes at
   every write, as rdok does). NAIVE_UNFENCED: always. FENCE: every write is made under the
   writer's own lock. */
#if defined(FLEET) && !defined(NAIVE_UNFENCED)
#define CAN_WRITE (!sess_lost || (LOCKFREE && mine(rdok)))
#else
#define CAN_WRITE true
#endif
#if defined(FLEET) && !defined(NO_FENCE)
#define FENCE assert(lock == me)
#else
#define FENCE skip
#endif

#ifdef NAIVE_TIMEOUT_UNLOCK
byte inflight;              /* a request its sender gave up on, not yet at the provider */
#endif

/* Mode::accepts(record): fresh, and for reject not the token that got the 401 */
#define accepts(dead, k) (!(dead) && fresh(k) && (mode == FRESH || (k) != bad))

#ifdef NAIVE_IGNORE_BACKOFF
#define in_backoff 0
#else
/* Record::backing_off(now) */
#define in_backoff f_backoff
#endif

#ifdef NAIVE_NOLOCK
#define LOCK   true
#define UNLOCK skip
#define LOCKFREE true
#else
/* flock(LOCK_EX) is granted while nobody holds the lock, exclusively or shared */
#define LOCKFREE (lock == 0 && NO_SHARED)
/* try_lock_exclusive, or lock_exclusive: block in the kernel until it is granted */
#define LOCK   LOCKFREE -> lock = me
#if defined(NAIVE_SHARED_REFRESH) || defined(FLEET)
/* the naive waiter reaches the unlock without holding the lock: it must not drop another's;
   FLEET: a holder whose session ended unlocks nothing (pg_advisory_unlock, or the dropped
   connection, concerns its own session only) */
#define UNLOCK lock = (lock == me -> 0 : lock)
#else
/* LockFile::drop: unlock explicitly, then close */
#define UNLOCK lock = 0
#endif
#endif

#ifdef NAIVE_LOCKFILE
/* a lock file (O_EXCL, mkdir) outlives its holder */
#define DEATH_RELEASES_LOCK skip
#else
/* the kernel drops a dead process's flock */
#define DEATH_RELEASES_LOCK if :: lock == me -> lock = 0 :: else fi
#endif
#ifdef SHARED_HOLD
#define DEATH_RELEASES_SHARED shl = shl & ~bit(me)
#else
#define DEATH_RELEASES_SHARED skip
#endif

/* Leader::commit_held: is the held rotation still the record's successor? The code asks
   whether the record is ok and still holds the refresh token the rotation was redeemed with
   (HeldRotation::spent); the naive rule compared generations. */
#ifndef NAIVE_HELD_BY_GENERATION
#define held_current (r_k == h_sent && !r_dead)
#else
#define held_current mine(hbok)
#endif

/* Slot::install: an unlocked read never goes back to an older generation; a read under the
   lock (or our own write) always wins. A needs_login record leaves no usable token. In the
   model an unlocked read is never older than the slot (a read is one step, generations only
   rise, and one model process is one leader), so both kinds install what they read. */
#define install_auth \
	seen = (mine(rdok) -> seen | bit(me) : seen & ~bit(me)); c_k = (r_dead -> 0 : r_k)
#define install_unlocked install_auth

/* Back to the caller: temporaries cleared so that equal states compare equal. */
#define reset \
	rdok = rdok & ~bit(me); r_k = 0; r_dead = 0; mode = 0; bad = 0; ans = 0; outcome = 0; \
	sent = 0; nk = 0; recovered = 0; waited = 0; sess_lost = 0

/* ADOPT: a token a leader adopts (at the unlocked read, after the shared wait, or under the
   lock) is one the provider would accept at the time of the read: it issued it, nothing
   superseded it (it is the record's pair: the read and this check are one step), it is
   fresh, and its family is not revoked. A family is revoked only by a replay, which G1
   allows only in its documented window; the replayer then records needs_login (G5), so the
   one exemption is G5's own window: that rejection was never recorded (famdl). */
#ifndef NO_ADOPT
#define adopt_valid \
	assert(r_k != 0 && r_k < next_k && r_k == f_k && !f_dead && fresh(r_k) && \
		(!revoked[fam[r_k]] || famdl[fam[r_k]]))
#else
#define adopt_valid skip
#endif

/* §4 2.1-2.2, Leader::run: the unlocked read; adopt a fresh record (not older than ours),
   stop at needs_login with no network call; while a backoff is in force, the old token if it
   is not yet expired, else Transient (Leader::backing_off: the slot installs the record either
   way, so the choice only changes what the caller gets); else go for the lock. */
inline unlocked_read()
{
	READ; r_k = f_k; r_dead = f_dead;
	printf("P%d: %e: unlocked read: generation %d, pair %d, %e, %e\n", me,
		(mode == FRESH -> access_token : reject_401), f_gen, r_k,
		(r_dead -> needs_login : (fresh(r_k) -> fresh_token : stale_token)),
		(f_backoff -> backing_off : no_backoff));
	if
	:: r_dead -> install_unlocked; reset
	:: (!r_dead && accepts(r_dead, r_k)) -> adopt_valid; install_unlocked; reset
	:: (!r_dead && !accepts(r_dead, r_k) && in_backoff) ->
		install_unlocked;
		reset                                        /* reach: backoff_unlocked */
	:: else -> goto locking
	fi
}

/* §4 2.3, Leader::after_release: the holder has released (the shared flock was granted and
   let go at once); the unlocked re-read, decided as at the first one: needs_login, adopt a
   fresh record, answer with a backoff in force (a holder whose refresh failed wrote it), or
   only then queue for the exclusive lock. */
inline released_read()
{
	READ; r_k = f_k; r_dead = f_dead;
	printf("P%d: after the release: unlocked re-read: generation %d, pair %d, %e, %e\n", me,
		f_gen, r_k,
		(r_dead -> needs_login : (fresh(r_k) -> fresh_token : stale_token)),
		(f_backoff -> backing_off : no_backoff));
#ifdef NAIVE_ALWAYS_QUEUE
	/* the naive waiter queues for the exclusive lock whatever it read */
	printf("P%d: queues for the exclusive lock whatever it read\n", me);
	goto locking;
#endif
	if
	:: r_dead ->
		install_unlocked; reset; goto end_idle      /* reach: needs_login_after_wait */
	:: (!r_dead && accepts(r_dead, r_k)) ->
		adopt_valid; install_unlocked; reset; goto end_idle /* reach: adopted_after_wait */
	:: (!r_dead && !accepts(r_dead, r_k) && in_backoff) ->
		install_unlocked; reset; goto end_idle      /* reach: backoff_after_wait */
	:: else ->
#ifdef NAIVE_SHARED_REFRESH
		/* the naive waiter refreshes with what it read, without the exclusive lock */
		printf("P%d: refreshes what it read after the wait (no exclusive lock)\n", me);
		goto refresh
#else
		printf("P%d: still stale: queues for the exclusive lock\n", me); /* reach: queued_after_wait */
		goto locking
#endif
	fi
}

/* A held rotation ends (recommitted, dropped, or gone with its process): the window closes. */
#define unhold \
	inwin[h_sent]--; unsaved[h_sent] = 0; h_k = 0; h_sent = 0; hbok = hbok & ~bit(me)

/* SIGKILL before the next step: memory gone, the kernel drops the lock. An answer between
   receive and commit, or held after a failed commit, is G3's documented window; an
   invalid_grant not yet recorded is G5's. */
#define DIE \
	:: atomic { (crashes < MAXCRASH) -> \
		crashes++; \
		printf("P%d: KILLED (%e)\n", me, (holding -> answer_not_committed : \
			(h_k != 0 -> rotation_held_unsaved : \
			(rejecting -> rejection_not_recorded : nothing_in_hand)))); \
		DEATH_RELEASES_LOCK; DEATH_RELEASES_SHARED; \
		if :: holding -> inwin[sent]--; lost[sent] = 1; holding = 0 :: else fi; \
		if :: h_k != 0 -> lost[h_sent] = 1; unhold :: else fi; \
		if :: rejecting -> dead_lost[sent] = 1; famdl[fam[sent]] = 1; rejecting = 0 :: else fi; \
		seen = seen & ~bit(me); c_k = 0; reset; \
		goto end_idle }

/* The provider answers refresh token `tok` (State::refresh): `o` is the outcome, `a` the new
   pair. A client error comes before the grant is looked at (client authentication), so the
   refresh token stays as it was. */
inline provide(who, tok, a, o)
{
	if
	:: (clienterrs < MAXCLIENTERR) ->
		clienterrs++; clerr[tok] = 1; o = CLIENTERR     /* reach: client_error */
	:: spent[tok] ->                                   /* a replay */
		if
#ifdef GRACE
		:: !revoked[fam[tok]] ->                        /* within the grace window */
			a = answer[tok]; o = OK                     /* reach: grace_reuse */
#endif
		:: true ->                                      /* reuse detected */
			revoked[fam[tok]] = 1; rejected[tok] = 1; o = INVALID /* reach: replay_revokes */
		fi
	:: (!spent[tok] && revoked[fam[tok]]) ->
		rejected[tok] = 1; o = INVALID
	:: (!spent[tok] && !revoked[fam[tok]] && next_k > MAXK) ->
		o = TRANSIENT                      /* the search's bound: a 503 */
	:: (!spent[tok] && !revoked[fam[tok]] && next_k <= MAXK) ->
		if
		:: clerr[tok] ->                    /* it got a client error before: still redeemable */
			clerr[tok] = 0; printf("P%d:   (redeemed after a client error)\n", who) /* reach: redeemed_after_client_error */
		:: else
		fi;
		spent[tok] = 1; fam[next_k] = fam[tok];
#ifdef GRACE
		answer[tok] = next_k;
#endif
		a = next_k; next_k++; o = OK
#ifdef LOSS
		;
		if
		:: true
		:: true ->        /* the answer is lost (a dropped connection; a refresher past the hard cap) */
			printf("P%d:   provider rotated to %d; the answer is lost\n", who, a);
			lost[tok] = 1; a = 0; o = TRANSIENT        /* reach: answer_lost */
		fi
#endif
	fi
}

active [N] proctype client()
{
	byte me = _pid + 1;
	byte c_k;                        /* the slot: the token last installed (its generation:
	                                    the mask seen) */
	byte r_k; bit r_dead;            /* the record the leader works on (its generation: the
	                                    mask rdok) */
	byte mode, bad;                  /* the flight's Mode (bad = the token that got a 401) */
	byte sent, ans, outcome;         /* the refresh token presented; the provider's answer */
	bit  recovered;                  /* step 8: at most one race recovery */
	byte nk;                         /* step 8: the token the re-read found */
	bit  holding;                    /* G3's window: an answer in hand, not yet committed */
	bit  rejecting;                  /* G5's window: invalid_grant in hand, not yet recorded */
	byte h_k, h_sent;                /* Slot::held: a rotation (pair h_k, the answer to
	                                    redeeming h_sent) whose commit failed; 0 = none. Its
	                                    base generation: the mask hbok */
	bit  sess_lost;                  /* FLEET: the lock's session ended under this holder,
	                                    which goes on; the server freed its lock */
	bit  waited;                     /* §4 2.3: the try-lock found the lock held; this leader
	                                    waits for the release, and then queues for it */

end_idle:
	do
	/* §4 1: the hot path misses (no token, stale, or the revalidate stat saw another
	   version): access_token() -> fly(Mode::Fresh) -> Leader::run */
	:: atomic { (c_k == 0 || !fresh(c_k) || !mine(seen)) ->
		mode = FRESH; unlocked_read() }
	/* a 401 with the token the slot holds: reject(token) -> fly(Mode::Reject(token)) */
	:: atomic { (c_k != 0 && rejects < MAXREJECT) ->
		rejects++; mode = REJECT; bad = c_k; unlocked_read() }
	/* a login: the provider starts a new family; then Store::save */
	:: atomic { (me == 1 && saves < MAXSAVE && next_k <= MAXK) ->
		saves++; ans = next_k; fam[ans] = ans; next_k++; goto save }
	DIE
	od;

locking:	/* §4 2.3 the lock: taken at once if free (Leader::try_lock); held by another, the
		   leader waits for its release on the shared flock (shared_wait below) and comes
		   back here only if the record is still stale, to queue (Leader::lock); 2.4 the
		   authoritative re-read (after committing a rotation this process holds), 2.5
		   (every record has a refresh token here: saves always carry one) */
	if
	:: atomic { (!waited && !LOCKFREE) ->          /* try_lock: WouldBlock */
		printf("P%d: finds the lock held; waits for its release (shared flock)\n", me);
#ifdef SHARED_HOLD
		if
		:: lock == 0 ->                            /* held shared only: waiters letting go */
			printf("P%d:   (held shared by others)\n", me) /* reach: busy_by_shared */
		:: else
		fi;
#endif
		waited = 1; goto shared_wait }                 /* reach: lock_busy */
	:: atomic { LOCK;
#ifndef NO_HANDOFF
		/* HANDOFF, one hand-off: a leader that waited for a holder's release takes the
		   exclusive lock only if the record it re-read after the release does not serve it
		   (no fresh token, or for reject the token that got the 401), or another write
		   replaced that record since (rdok: its re-read is still the current record). After
		   a refresh that the waiters saw, none of them takes the lock, so none refreshes
		   again: N waiters, one refresh, one hand-off. */
		assert(!(waited && mine(rdok) && accepts(f_dead, f_k)));
#endif
#if !defined(NAIVE_NOLOCK) && !defined(NAIVE_NOREREAD)
		READ; r_k = f_k; r_dead = f_dead;
		printf("P%d: locked; re-read: generation %d, pair %d, %e, %e\n", me, f_gen, r_k,
			(r_dead -> needs_login : (fresh(r_k) -> fresh_token : stale_token)),
			(f_backoff -> backing_off : no_backoff));
		/* Leader::commit_held: a rotation whose commit failed is committed first, if the
		   record is still the one it was refreshed from; else it is dropped */
		if
		:: (h_k != 0 && held_current) ->
			if
			:: true ->
#ifndef NO_G4
				assert(mine(rdok));
#endif
				WROTE; f_k = h_k; f_dead = 0; f_backoff = 0;
				printf("P%d: commits the held rotation: generation %d, pair %d\n", me, f_gen, f_k);
				r_k = h_k; r_dead = 0;
				unhold                                      /* reach: held_recommitted */
			:: (fails < MAXFAIL) ->                          /* Io again: still held */
				fails++;
				printf("P%d: the recommit's write fails (Io); still holds pair %d; unlocks\n", me, h_k);
				UNLOCK; reset; goto end_idle                 /* reach: recommit_failed */
			fi
		:: (h_k != 0 && !held_current) ->
			printf("P%d: drops the held pair %d (the record moved on: generation %d, pair %d)\n",
				me, h_k, f_gen, r_k);
#ifdef STRICT_HELD
			/* dropped only when superseded: a login or another rotation replaced the
			   refresh token it rotated, or the record is dead */
			assert(f_k != h_sent || f_dead);
#endif
			if
			:: (f_k == h_sent && f_dead) ->   /* another process replayed it: family revoked */
				lost[h_sent] = 1
			:: (f_k == h_sent && !f_dead) ->  /* not superseded: the rotation is lost for nothing */
				lost[h_sent] = 1;
				printf("P%d:   (its rotation is lost)\n", me) /* reach: held_dropped_live */
			:: else
			fi;
			unhold                                          /* reach: held_dropped */
		:: else
		fi;
		if
		:: r_dead ->                                                /* NeedsLogin */
			install_auth; UNLOCK; reset; goto end_idle   /* reach: needs_login_under_lock */
		:: (!r_dead && accepts(r_dead, r_k)) ->                     /* adopted */
			adopt_valid; install_auth; UNLOCK; reset; goto end_idle   /* reach: adopted_under_lock */
		:: (!r_dead && !accepts(r_dead, r_k) && in_backoff) ->      /* backing_off */
			install_auth; UNLOCK; reset; goto end_idle   /* reach: backoff_under_lock */
		:: else
		fi
#elif defined(NAIVE_NOREREAD)
		printf("P%d: locked (no re-read: it refreshes what it read before)\n", me)
#endif
		}
	DIE
	fi;

refresh:	/* §4 2.6, Leader::refresh_locked: the refresher, with the token just read; the lock
		   is kept until its answer is in, even past refresh_timeout */
	if
	:: atomic {
		sent = r_k;
		printf("P%d: presents refresh token %d (%e)\n", me, sent,
			(spent[sent] -> already_spent : not_spent));
		/* G1: a redeemed refresh token is never presented again, except when the answer
		   to its redemption died with its receiver or was lost (G3's documented window), or
		   while another process holds it after a failed commit (the same window) */
#ifdef STRICT_G1
		assert(!spent[sent]);
#else
		assert(!spent[sent] || lost[sent] || unsaved[sent] || CUTWIN(sent));
#endif
#if !defined(NAIVE_NOLOCK) && !defined(NAIVE_NOREREAD)
		/* G1 for a failed commit's own process: it recommits (or drops) the rotation it
		   holds before it presents anything, so it never presents the spent token */
		assert(h_k == 0);
#endif
#ifndef NO_G2
		/* G2: no request while the store holds a token that satisfies this caller; the
		   rotation replaces it, so N callers needing a new token cause one request. */
		assert(!accepts(f_dead, f_k));
#endif
#ifndef NO_G5
		/* G5: a rejected refresh token is recorded dead and never tried again (unless its
		   rejection was never recorded: the rejecter was killed first, or the write failed);
		   a dead record is never refreshed. */
#ifdef STRICT_G5
		assert(!rejected[sent] && !f_dead);
#else
		assert((!rejected[sent] || dead_lost[sent]) && !f_dead);
#endif
#endif
#ifndef NO_BACKOFF
		/* §4 step 9: while a backoff is in force, no process presents the refresh token */
		assert(!f_backoff);
#endif
		provide(me, sent, ans, outcome);
		printf("P%d:   provider answers %e %d\n", me,
			(outcome == OK -> rotated_to :
			 (outcome == INVALID -> invalid_grant :
			 (outcome == CLIENTERR -> client_error : unavailable))), ans);
		if
		:: outcome == OK -> inwin[sent]++; holding = 1      /* the window opens */
		:: outcome == INVALID -> rejecting = 1
		:: else
		fi
		}
#ifdef NAIVE_TIMEOUT_UNLOCK
	/* the request is sent, refresh_timeout fires before the answer, and the leader goes on
	   to step 9 (backoff, unlock) while the request is still on its way (network() below) */
	:: atomic { inflight == 0 ->
		sent = r_k; inflight = sent;
		printf("P%d: sends refresh token %d (%e); refresh_timeout fires, the request is still on its way\n",
			me, sent, (spent[sent] -> already_spent : not_spent));
		assert(!spent[sent] || lost[sent] || unsaved[sent]);
		outcome = TRANSIENT }
#endif
#ifdef NAIVE_EARLY_FREE
	/* the lock is freed before the holder's request reached the provider */
	:: atomic { (lock == me && !sess_lost && cuts < MAXCUT) ->
		cuts++; lock = 0; sess_lost = 1;
		printf("P%d: its database session ends before its request is out; the server frees the lock; P%d goes on\n", me, me);
		goto refresh }
#endif
	DIE
	fi;

answered:
	if
#ifdef FLEET
	/* §10: the holder's session ends while it is alive (a network cut or a hang the server
	   ends after B, a server restart): the server frees the lock, and the holder goes on
	   with what it has. B is longer than the holder's span up to the provider's answer, so
	   this happens only once the request was answered. An answer in hand is G1's window for
	   the others, as it is when its receiver dies (cut[]); an invalid_grant in hand is G5's. */
	:: atomic { (lock == me && !sess_lost && cuts < MAXCUT) ->
		cuts++; lock = 0; sess_lost = 1;
		if :: holding -> cut[sent] = 1 :: else fi;
		/* an invalid_grant not yet recorded: G5's window for the others, as at a death */
		if :: rejecting -> dead_lost[sent] = 1; famdl[fam[sent]] = 1 :: else fi;
		printf("P%d: its database session ends (a cut, a hang past B, a restart): the server frees the lock; P%d goes on (%e)\n",
			me, me, (holding -> answer_not_committed :
			(rejecting -> rejection_not_recorded : nothing_in_hand)));  /* reach: session_lost */
		goto answered }
#endif
	/* §4 2.7: merge, generation + 1, write_atomically (the rename is the commit), publish.
	   A rename that did not happen (Io: disk full, an I/O error) keeps the rotation in the
	   process (Slot::held) for its next leader; the caller gets Io. A rename whose directory
	   fsync failed is committed (every process sees it): the model does not tell it apart. */
	:: atomic { outcome == OK ->
		if
		:: CAN_WRITE ->
#ifdef FLEET
			if
			:: (sess_lost && lock != me) ->
#ifndef NAIVE_UNFENCED
				lock = me;
				printf("P%d: its session is gone; it takes the lock again and writes where the stamp is the one it read\n", me)
#else
				printf("P%d: its lock is gone; it writes the record it read anyway (unfenced)\n", me)
#endif
				/* reach: relocked_commit */
			:: else
			fi;
#endif
			FENCE;
#ifndef NO_G4
			/* G4: every write is based on the record it replaces (no clobbered update) */
			assert(mine(rdok));
#endif
			WROTE; f_k = ans; f_dead = 0; f_backoff = 0;   /* reach: commit */
			printf("P%d: commits generation %d, pair %d; unlocks\n", me, f_gen, f_k);
			inwin[sent]--; holding = 0;                     /* the window closes */
			r_k = ans; r_dead = 0;
			install_auth; UNLOCK; reset; goto end_idle
		:: (fails < MAXFAIL) ->
			fails++;
			h_k = ans; h_sent = sent; unsaved[sent] = 1; holding = 0;
			if :: mine(rdok) -> hbok = hbok | bit(me) :: else fi;
			printf("P%d: the commit's write fails (Io); holds pair %d from generation %d; unlocks\n",
				me, h_k, f_gen);
			UNLOCK; reset; goto end_idle                     /* reach: commit_failed */
#ifdef FLEET
		:: sess_lost ->
			/* the session is gone and the lock not retaken, or the stamp changed: the
			   commit is fenced off (Io), the rotation held */
			h_k = ans; h_sent = sent; unsaved[sent] = 1; holding = 0;
			printf("P%d: its commit is fenced off (Io); holds pair %d\n", me, h_k);
			UNLOCK; reset; goto end_idle                     /* reach: fenced_off */
#endif
		fi }
	/* §4 2.8: re-read; another writer's rotation is adopted (at most once), else the token
	   is dead: write needs_login with last_error, unlock, InvalidGrant */
#ifdef FLEET
	/* Leader::recover re-reads on the lock's session: gone, so needs_login is not recorded */
	:: atomic { (sess_lost && (outcome == INVALID || (CLIENT_MARKS_DEAD && outcome == CLIENTERR))) ->
		dead_lost[sent] = 1; famdl[fam[sent]] = 1; rejecting = 0;
		printf("P%d: could not re-read to record needs_login (its session is gone); unlocks\n", me);
		UNLOCK; reset; goto end_idle }                       /* reach: needs_login_fenced */
#endif
	:: atomic { (!sess_lost && (outcome == INVALID || (CLIENT_MARKS_DEAD && outcome == CLIENTERR))) ->
		READ; r_dead = f_dead; nk = f_k;
		if
		:: (nk != r_k && !recovered && !r_dead) ->
			/* a race, so nothing to record; unreachable between processes that take the lock */
			recovered = 1; r_k = nk; nk = 0; rejecting = 0;  /* unreachable: race_recovered */
			if
			:: accepts(r_dead, r_k) -> install_auth; UNLOCK; reset; goto end_idle
			:: else -> goto refresh                         /* refresh once more with it */
			fi
		:: else -> r_k = nk; nk = 0
		fi;
		if
		:: true ->
#ifndef NO_G4
			assert(mine(rdok));
#endif
			FENCE;
			WROTE; f_k = r_k; f_dead = 1; f_backoff = 0; rejecting = 0; /* reach: needs_login_written */
			printf("P%d: writes generation %d needs_login; unlocks\n", me, f_gen);
			r_dead = 1
		:: (fails < MAXFAIL) ->          /* mark_dead's write fails: the record stays ok */
			fails++;
			dead_lost[sent] = 1; famdl[fam[sent]] = 1; rejecting = 0; /* reach: needs_login_unsaved */
			printf("P%d: could not record needs_login (Io); unlocks\n", me)
		fi;
		install_auth; UNLOCK; reset; goto end_idle }
	/* §4 2.9, Leader::defer: a transient error or a client error (kept in last_error; the
	   record stays ok): a backoff in the record, generation + 1 (a failed write only loses
	   the backoff), unlock; then the old token if it is not yet expired, else the error
	   (deferred_or: the slot installs the record either way) */
	:: atomic { (outcome == TRANSIENT || (!CLIENT_MARKS_DEAD && outcome == CLIENTERR)) ->
		if
		:: CAN_WRITE ->
#ifdef FLEET
			if
			:: (sess_lost && lock != me) ->
#ifndef NAIVE_UNFENCED
				lock = me;
				printf("P%d: its session is gone; it takes the lock again and writes where the stamp is the one it read\n", me)
#else
				printf("P%d: its lock is gone; it writes the record it read anyway (unfenced)\n", me)
#endif
				/* reach: relocked_backoff */
			:: else
			fi;
#endif
			FENCE;
#ifndef NO_G4
			assert(mine(rdok));
#endif
#ifdef FLEET
			/* the record as this holder read it, with a backoff (Leader::defer) */
			WROTE; f_k = r_k; f_dead = 0; f_backoff = 1;
#else
			WROTE; f_backoff = 1;                           /* reach: backoff_written */
#endif
			printf("P%d: writes generation %d with a backoff (%e); unlocks\n", me, f_gen,
				(outcome == CLIENTERR -> client_error : unavailable))
		:: (fails < MAXFAIL) ->
			fails++;
			printf("P%d: could not record the backoff (Io); unlocks\n", me) /* reach: backoff_unsaved */
#ifdef FLEET
		:: sess_lost ->
			printf("P%d: its backoff write is fenced off (Io); unlocks\n", me) /* reach: backoff_fenced */
#endif
		fi;
#ifndef NO_G5
		/* G5b, client errors: the record stays ok, with the same refresh token (redeemable
		   again once the backoff is over); FLEET: unless its write was fenced off (the
		   record is then whatever the next holder of the lock made it) */
		assert(outcome != CLIENTERR || (sess_lost && lock != me) || (!f_dead && f_k == sent));
#endif
		UNLOCK; install_auth; reset; goto end_idle }        /* reach: refresh_deferred */
	DIE
	fi;

save:	/* Store::save_inner: lock, read the current record, generation + 1, write, unlock */
	if
	:: atomic { LOCK;
		READ;
#ifndef NO_G4
		assert(mine(rdok));
#endif
		WROTE; f_k = ans; f_dead = 0; f_backoff = 0;   /* reach: save */
		printf("P%d: save: writes generation %d, pair %d (a new login)\n", me, f_gen, f_k);
		r_k = ans; r_dead = 0;
		install_auth; UNLOCK; reset; goto end_idle }
	DIE
	fi;

shared_wait:	/* §4 2.3, lock::wait_released + Leader::after_release: flock(LOCK_SH), granted when
		   nobody holds the lock exclusively, so every waiter of every process is granted at
		   the holder's release (in any order, none waiting for another); let go at once
		   (wait_shared_in_kernel drops it before it wakes the callers): the leader takes
		   nothing. Then the unlocked re-read. By default these are one step, taken at any
		   moment the lock is free (see "Granularity" at the top); -DSHARED_HOLD makes them
		   three. */
#ifndef SHARED_HOLD
	if
	:: atomic { (lock == 0) ->
		printf("P%d: the lock is released: shared flock granted and let go\n", me);
		released_read() }
	DIE
	fi
#else
	if
	:: atomic { (lock == 0) ->
		if
		:: shl != 0 ->                              /* several hold it at once */
			printf("P%d:   (others hold it shared too)\n", me) /* reach: shared_together */
		:: else
		fi;
		shl = shl | bit(me);
		printf("P%d: the lock is released: shared flock granted\n", me) }
	DIE
	fi;
	if
	:: atomic { shl = shl & ~bit(me);              /* LockFile::drop: unlock, close */
		printf("P%d: lets go of the shared flock\n", me) }
	DIE
	fi;
	if
	:: atomic { released_read() }
	DIE
	fi
#endif
}

/* time passes: the oldest access token that is still fresh goes stale; a backoff runs out.
   Once the provider is at the search's bound (it answers only 503s), a backoff no longer
   runs out: every further round would be one more 503 and one more backoff, with a new
   generation each time, and the search would not end. */
active proctype clock()
{
end_clock:
	do
	:: atomic { stale_upto + 1 < next_k -> stale_upto++;
		printf("clock: access token %d is stale\n", stale_upto) }
	:: atomic { f_backoff && next_k <= MAXK -> f_backoff = 0;
		printf("clock: the backoff is over\n") }                /* reach: backoff_ended */
	od
}

#ifdef NAIVE_TIMEOUT_UNLOCK
/* a request whose sender gave up reaches the provider later; nobody waits for its answer */
active proctype network()
{
	byte t, a, o;
end_net:
	do
	:: atomic { inflight != 0 -> t = inflight; inflight = 0;
		printf("network: the abandoned request with refresh token %d reaches the provider (%e)\n",
			t, (spent[t] -> already_spent : not_spent));
		/* G1 where the provider receives it */
		assert(!spent[t] || lost[t] || unsaved[t]);
		provide(0, t, a, o);
		if :: o == OK -> lost[t] = 1 :: else fi;
		t = 0; a = 0; o = 0 }
	od
}
#endif

/* G3, no lost rotation: whenever the store holds a refresh token the provider has already
   redeemed, the new one is in the memory of a process (between receive and commit, or held
   after a failed commit), or it died there (lost). G5b: the record is marked dead only with a
   refresh token the provider rejected as such (never for a client error). Checked in every
   reachable state. */
#if defined(STRICT_G3)
#define INV_G3 (!spent[f_k] || inwin[f_k] > 0)
#elif !defined(NO_G3)
#define INV_G3 (!spent[f_k] || inwin[f_k] > 0 || lost[f_k])
#else
#define INV_G3 true
#endif
#ifndef NO_G5
#define INV_G5 (!f_dead || rejected[f_k])
#else
#define INV_G5 true
#endif

active proctype invariants()
{
end_inv:
	atomic { !(INV_G3 && INV_G5) -> assert(INV_G3); assert(INV_G5) }
}
