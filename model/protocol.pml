/*
 * oauth-lock: a Promela model of the cross-process refresh protocol (DESIGN.md §4), checked
 * with spin by scripts/test-model. It exists so that G1-G5 are proven for every interleaving
 * and every crash point of a few processes, not only sampled by the multi-process tests.
 *
 * What a model step stands for (DESIGN.md §4 step -> core function):
 *   idle options ........... §4 1 hot path      TokenSource::cached, access_token, reject
 *   unlocked read .......... §4 2.1-2.2         Leader::run, Backend::read (backend.rs read_record)
 *   lock + locked read ..... §4 2.3-2.5         Backend::lock -> lock.rs lock_exclusive (flock),
 *                                               Locked::read, Mode::accepts
 *   present ................ §4 2.6             Leader::refresh_locked -> Refresher::refresh,
 *                                               answered by cli/src/mock_server/state.rs refresh
 *   commit ................. §4 2.7             Record::apply_refresh + stamp, Locked::write
 *                                               (backend.rs write_atomically: the rename)
 *   invalid_grant .......... §4 2.8             refresh_locked's InvalidGrant/Terminal arm
 *   transient .............. §4 2.9             refresh_locked's Transient arm (refresh_deferred)
 *   install ................ §4 "never go back"  Slot::install(record, version, authoritative)
 *   login + save ........... §4 save            Store::save_inner
 *   die .................... G6                 SIGKILL: the slot and any answer in hand are
 *                                               lost, the kernel drops the flock; restart cold
 *
 * Granularity: each step is one atomic transition that touches shared state once (a read,
 * the lock, the provider, a rename). Local work next to it (deciding, installing into the
 * slot, unlocking after a rename) is folded into that step: no other process can observe
 * the difference, and a crash in between loses the same memory. A process may die before
 * any step, including while it waits for the lock.
 *
 * Abstractions (model/README.md says more): one model process = one OS process with one slot;
 * its threads are the single flight's followers and only wait for the leader's result. A
 * token pair (access + refresh token issued by one answer) is one number k; pair 1 is the
 * initial login. Time is a clock that makes the oldest issued access token stale (all tokens
 * have one lifetime counted from the request, so they go stale in issue order); "stale" is
 * "not fresh"; whether a stale token is already past its expiry (step 9) is a free choice.
 * A record is read in one step (the rename gives readers the old or the new file, never a
 * torn one). Not modelled: mirrors, verify(), clear(), Busy, fork, the refresh margin.
 *
 * Switches (cpp, pass to `spin -a -DNAME`):
 *   N=<n>            processes (default 3); process 1 may also log in (save)
 *   MAXK=<k>         token pairs the provider may issue; beyond it answers
 *                    temporarily_unavailable (the search's bound; default 5)
 *   MAXCRASH, MAXREJECT, MAXSAVE   budgets per run (default 2, 1, 1)
 *   GRACE            a reuse of a spent refresh token of a live family may get the same
 *                    answer again (mock --grace; the window may also have passed)
 *   LOSS             an answer may be lost after the provider rotated (refresh_timeout fires
 *                    or the connection drops: the caller sees Transient)
 *   STRICT_G1        G1 without the documented window's exemption (expected to FAIL when
 *                    crashes are on: the window is real and reachable); STRICT_G3 and
 *                    STRICT_G5 likewise for G3 and G5
 *   NAIVE_NOLOCK     the naive protocol without the lock (expected to FAIL G1)
 *   NAIVE_NOREREAD   the naive protocol with the lock but no re-read under it (expected to
 *                    FAIL G1)
 *   NAIVE_LOCKFILE   a lock that outlives a killed holder, as a lock file made with O_EXCL or
 *                    mkdir does (expected to FAIL G6: spin reports an invalid end state, the
 *                    other processes wait forever)
 *   NO_G2 .. NO_G5   leave a property out (the naive runs keep only G1, so the violation
 *                    spin reports is G1's)
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

/* names for the counterexample printouts (spin -t) */
mtype = { access_token, reject_401, fresh_token, stale_token, needs_login, rotated_to,
          invalid_grant, unavailable, answer_not_committed, rejection_not_recorded,
          nothing_in_hand, already_spent, not_spent };

#define FRESH   1   /* Mode::Fresh  (access_token) */
#define REJECT  2   /* Mode::Reject (reject(token) after a 401) */

#define OK        1
#define INVALID   2 /* invalid_grant: ErrorCode::InvalidGrant / Terminal */
#define TRANSIENT 3

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
                               between receive and commit (or, with LOSS, never got it) */
byte inwin[MAXK + 1];       /* processes holding an answer to k, not yet committed */
bit  rejected[MAXK + 1];    /* the provider answered invalid_grant to k */
bit  dead_lost[MAXK + 1];   /* ... and its receiver was killed before recording needs_login */

/* ---- the clock: access token k is stale iff k <= stale_upto ---- */
byte stale_upto = 0;
#define fresh(k) ((k) > stale_upto)

/* ---- the record <stem>.json: replaced by rename, so read and written in one step ---- */
byte f_gen = 1;             /* "generation" */
byte f_k = 1;               /* access_token and refresh_token (pair k) */
bit  f_dead = 0;            /* "state": "needs_login" */

/* ---- the flock on <stem>.lock: 0 = free, else the holder; it dies with its holder ---- */
byte lock = 0;

byte crashes, rejects, saves;

/* Mode::accepts(record): fresh, and for reject not the token that got the 401 */
#define accepts(dead, k) (!(dead) && fresh(k) && (mode == FRESH || (k) != bad))

#ifdef NAIVE_NOLOCK
#define LOCK   true
#define UNLOCK skip
#else
/* lock_exclusive: try_lock, else block in the kernel until the holder lets go */
#define LOCK   (lock == 0) -> lock = me
/* LockFile::drop: unlock explicitly, then close */
#define UNLOCK lock = 0
#endif

#ifdef NAIVE_LOCKFILE
/* a lock file (O_EXCL, mkdir) outlives its holder */
#define DEATH_RELEASES_LOCK skip
#else
/* the kernel drops a dead process's flock */
#define DEATH_RELEASES_LOCK if :: lock == me -> lock = 0 :: else fi
#endif

/* Slot::install: an unlocked read never goes back to an older generation; a read under the
   lock (or our own write) always wins. A needs_login record leaves no usable token. */
#define install_auth \
	c_gen = r_gen; c_k = (r_dead -> 0 : r_k)
#define install_unlocked \
	if \
	:: (r_gen < c_gen) -> skip \
	:: else -> install_auth \
	fi

/* Back to the caller: temporaries cleared so that equal states compare equal. */
#define reset \
	r_gen = 0; r_k = 0; r_dead = 0; mode = 0; bad = 0; ans = 0; outcome = 0; \
	sent = 0; nk = 0; recovered = 0

/* §4 2.1-2.2, Leader::run: the unlocked read; adopt a fresh record (not older than ours),
   stop at needs_login with no network call, else go for the lock. */
#define unlocked_read \
	r_gen = f_gen; r_k = f_k; r_dead = f_dead; \
	printf("P%d: %e: unlocked read: generation %d, pair %d, %e\n", me, \
		(mode == FRESH -> access_token : reject_401), r_gen, r_k, \
		(r_dead -> needs_login : (fresh(r_k) -> fresh_token : stale_token))); \
	if \
	:: r_dead -> install_unlocked; reset \
	:: (!r_dead && r_gen >= c_gen && accepts(r_dead, r_k)) -> install_unlocked; reset \
	:: else -> goto locking \
	fi

/* SIGKILL before the next step: memory gone, the kernel drops the lock. An answer between
   receive and commit is G3's documented window; an invalid_grant not yet recorded is G5's. */
#define DIE \
	:: atomic { (crashes < MAXCRASH) -> \
		crashes++; \
		printf("P%d: KILLED (%e)\n", me, (holding -> answer_not_committed : \
			(rejecting -> rejection_not_recorded : nothing_in_hand))); \
		DEATH_RELEASES_LOCK; \
		if :: holding -> inwin[sent]--; lost[sent] = 1; holding = 0 :: else fi; \
		if :: rejecting -> dead_lost[sent] = 1; rejecting = 0 :: else fi; \
		c_gen = 0; c_k = 0; reset; \
		goto end_idle }

active [N] proctype client()
{
	byte me = _pid + 1;
	byte c_gen, c_k;                 /* the slot: generation and token last installed */
	byte r_gen, r_k; bit r_dead;     /* the record the leader works on */
	byte mode, bad;                  /* the flight's Mode (bad = the token that got a 401) */
	byte sent, ans, outcome;         /* the refresh token presented; the provider's answer */
	bit  recovered;                  /* step 8: at most one race recovery */
	byte nk;                         /* step 8: the token the re-read found */
	bit  holding;                    /* G3's window: an answer in hand, not yet committed */
	bit  rejecting;                  /* G5's window: invalid_grant in hand, not yet recorded */

end_idle:
	do
	/* §4 1: the hot path misses (no token, stale, or the revalidate stat saw another
	   version): access_token() -> fly(Mode::Fresh) -> Leader::run */
	:: atomic { (c_k == 0 || !fresh(c_k) || c_gen != f_gen) ->
		mode = FRESH; unlocked_read }
	/* a 401 with the token the slot holds: reject(token) -> fly(Mode::Reject(token)) */
	:: atomic { (c_k != 0 && rejects < MAXREJECT) ->
		rejects++; mode = REJECT; bad = c_k; unlocked_read }
	/* a login: the provider starts a new family; then Store::save */
	:: atomic { (me == 1 && saves < MAXSAVE && next_k <= MAXK) ->
		saves++; ans = next_k; fam[ans] = ans; next_k++; goto save }
	DIE
	od;

locking:	/* §4 2.3 the lock, 2.4 the authoritative re-read, 2.5 (every record has a
		   refresh token here: saves always carry one) */
	if
	:: atomic { LOCK;
#if !defined(NAIVE_NOLOCK) && !defined(NAIVE_NOREREAD)
		r_gen = f_gen; r_k = f_k; r_dead = f_dead;
		printf("P%d: locked; re-read: generation %d, pair %d, %e\n", me, r_gen, r_k,
			(r_dead -> needs_login : (fresh(r_k) -> fresh_token : stale_token)));
		if
		:: r_dead ->                                                /* NeedsLogin */
			install_auth; UNLOCK; reset; goto end_idle   /* reach: needs_login_under_lock */
		:: (!r_dead && accepts(r_dead, r_k)) ->                     /* adopted */
			install_auth; UNLOCK; reset; goto end_idle   /* reach: adopted_under_lock */
		:: else
		fi
#elif defined(NAIVE_NOREREAD)
		printf("P%d: locked (no re-read: it refreshes what it read before)\n", me)
#endif
		}
	DIE
	fi;

refresh:	/* §4 2.6, Leader::refresh_locked: the refresher, with the token just read */
	if
	:: atomic {
		sent = r_k;
		printf("P%d: presents refresh token %d (%e)\n", me, sent,
			(spent[sent] -> already_spent : not_spent));
		/* G1: a redeemed refresh token is never presented again, except when the answer
		   to its redemption died with its receiver (G3's documented window). */
#ifdef STRICT_G1
		assert(!spent[sent]);
#else
		assert(!spent[sent] || lost[sent]);
#endif
#ifndef NO_G2
		/* G2: no request while the store holds a token that satisfies this caller; the
		   rotation replaces it, so N callers needing a new token cause one request. */
		assert(!accepts(f_dead, f_k));
#endif
#ifndef NO_G5
		/* G5: a rejected refresh token is recorded dead and never tried again (unless its
		   rejecter was killed before recording it); a dead record is never refreshed. */
#ifdef STRICT_G5
		assert(!rejected[sent] && !f_dead);
#else
		assert((!rejected[sent] || dead_lost[sent]) && !f_dead);
#endif
#endif
		/* the provider: State::refresh */
		if
		:: spent[sent] ->                                   /* a replay */
			if
#ifdef GRACE
			:: !revoked[fam[sent]] ->                        /* within the grace window */
				ans = answer[sent]; outcome = OK           /* reach: grace_reuse */
#endif
			:: true ->                                       /* reuse detected */
				revoked[fam[sent]] = 1; rejected[sent] = 1; outcome = INVALID /* reach: replay_revokes */
			fi
		:: (!spent[sent] && revoked[fam[sent]]) ->
			rejected[sent] = 1; outcome = INVALID
		:: (!spent[sent] && !revoked[fam[sent]] && next_k > MAXK) ->
			outcome = TRANSIENT                 /* the search's bound: a 503 */
		:: (!spent[sent] && !revoked[fam[sent]] && next_k <= MAXK) ->
			spent[sent] = 1; fam[next_k] = fam[sent];
#ifdef GRACE
			answer[sent] = next_k;
#endif
			ans = next_k; next_k++; outcome = OK
#ifdef LOSS
			;
			if
			:: true
			:: true ->        /* the answer is lost (refresh_timeout, a dropped connection) */
				printf("P%d:   provider rotated to %d; the answer is lost\n", me, ans);
				lost[sent] = 1; ans = 0; outcome = TRANSIENT /* reach: answer_lost */
			fi
#endif
		fi;
		printf("P%d:   provider answers %e %d\n", me,
			(outcome == OK -> rotated_to :
			 (outcome == INVALID -> invalid_grant : unavailable)), ans);
		if
		:: outcome == OK -> inwin[sent]++; holding = 1      /* the window opens */
		:: outcome == INVALID -> rejecting = 1
		:: else
		fi
		}
	DIE
	fi;

	if
	/* §4 2.7: merge, generation + 1, write_atomically (the rename is the commit), publish */
	:: atomic { outcome == OK ->
#ifndef NO_G4
		/* G4: every write is based on the record it replaces (no clobbered update) */
		assert(f_gen == r_gen);
#endif
		f_gen = r_gen + 1; f_k = ans; f_dead = 0;          /* reach: commit */
		printf("P%d: commits generation %d, pair %d; unlocks\n", me, f_gen, f_k);
		inwin[sent]--; holding = 0;                         /* the window closes */
		r_gen = f_gen; r_k = ans; r_dead = 0;
		install_auth; UNLOCK; reset; goto end_idle }
	/* §4 2.8: re-read; another writer's rotation is adopted (at most once), else the token
	   is dead: write needs_login with last_error, unlock, InvalidGrant */
	:: atomic { outcome == INVALID ->
		r_gen = f_gen; r_dead = f_dead; nk = f_k;
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
#ifndef NO_G4
		assert(f_gen == r_gen);
#endif
		f_gen = r_gen + 1; f_k = r_k; f_dead = 1; rejecting = 0; /* reach: needs_login_written */
		printf("P%d: writes generation %d needs_login; unlocks\n", me, f_gen);
		r_gen = f_gen; r_dead = 1;
		install_auth; UNLOCK; reset; goto end_idle }
	/* §4 2.9: unlock; keep the old token if the provider still takes it (refresh_deferred),
	   else Transient */
	:: atomic { outcome == TRANSIENT ->
		UNLOCK;
		if
		:: (!r_dead && (mode == FRESH || r_k != bad)) ->
			install_auth                                     /* reach: refresh_deferred */
		:: true
		fi;
		reset; goto end_idle }
	DIE
	fi;

save:	/* Store::save_inner: lock, read the current record, generation + 1, write, unlock */
	if
	:: atomic { LOCK;
		r_gen = f_gen;
#ifndef NO_G4
		assert(f_gen == r_gen);
#endif
		f_gen = r_gen + 1; f_k = ans; f_dead = 0;          /* reach: save */
		printf("P%d: save: writes generation %d, pair %d (a new login)\n", me, f_gen, f_k);
		r_gen = f_gen; r_k = ans; r_dead = 0;
		install_auth; UNLOCK; reset; goto end_idle }
	DIE
	fi
}

/* time passes: the oldest access token that is still fresh goes stale */
active proctype clock()
{
end_clock:
	do
	:: atomic { stale_upto + 1 < next_k -> stale_upto++;
		printf("clock: access token %d is stale\n", stale_upto) }
	od
}

/* G3, no lost rotation: whenever the store holds a refresh token the provider has already
   redeemed, the new one is in the memory of a process between receive and commit, or its
   receiver died in exactly that window (lost). Checked in every reachable state. */
active proctype invariants()
{
end_inv:
#if defined(STRICT_G3)
	atomic { !(!spent[f_k] || inwin[f_k] > 0) -> assert(!spent[f_k] || inwin[f_k] > 0) }
#elif !defined(NO_G3)
	atomic { !(!spent[f_k] || inwin[f_k] > 0 || lost[f_k]) ->
		assert(!spent[f_k] || inwin[f_k] > 0 || lost[f_k]) }
#else
	false
#endif
}
