// The feed page: the feed's history, then live messages over EventSource,
// newest on top; a compose box; a filter by author; older pages from
// GET /api/messages.
//
// Whatever a message holds reaches the page through textContent only, never
// as markup. The server's Content-Security-Policy (no inline scripts or
// handlers, Trusted Types) would stop injected markup from running anyway.
'use strict';

(() => {
  // The server's default --max-content-chars. The server has the last word:
  // when its limit differs, its refusal is shown like any other.
  const LIMIT = 280;
  // Message elements kept on the page: enough to read back a while, few
  // enough that thousands of arrivals cost no more than these.
  const DOM_CAP = 500;
  const PAGE = 50;  // messages per "older" page
  // The server's rule: 1-64 bytes of UTF-8 without control characters.
  const USER_ID_CONTROL = /[\u0000-\u001f\u007f-\u009f]/;
  const userIdOk = (s) => s.length > 0 && new TextEncoder().encode(s).length <= 64 && !USER_ID_CONTROL.test(s);
  const RETRY_MIN_MS = 1000;
  const RETRY_MAX_MS = 30000;
  // What a new stream sends first, asked for rather than left to the
  // server's --history (0 there would show an empty page).
  const HISTORY = 100;
  // A tab hidden this long gives its stream up, and resumes it when shown:
  // a browser opens at most 6 connections to one server over HTTP/1.1, so
  // six tabs each holding a stream left none for posting.
  const HIDDEN_CLOSE_MS = 3000;
  // The longest a post, or a check made on reconnecting, may take.
  const REQUEST_TIMEOUT_MS = 15000;

  const $ = (id) => document.getElementById(id);
  const ui = {
    conn: $('conn'), connText: $('conn-text'),
    form: $('compose'), user: $('user'), text: $('text'), counter: $('counter'), send: $('send'),
    postStatus: $('post-status'),
    filter: $('filter'), filterUser: $('filter-user'), clearFilter: $('clear-filter'),
    notice: $('notice'), newer: $('newer'), list: $('messages'), empty: $('empty'), older: $('older'),
  };

  const state = {
    filter: null,       // the author shown, or null for everyone
    generation: 0,      // bumped when the view starts over; late answers for an old view are dropped
    items: [],          // what the list shows, newest first: {seq, msg, missed, el}
    pending: [],        // received from the stream, not rendered yet
    flushTimer: 0,
    lastSeq: 0,         // the newest seq the stream delivered: where a new stream resumes
    lastId: '',         // the id of the message at lastSeq: whether a server still has it
    detached: false,    // the newest were dropped to make room for older pages
    waiting: 0,         // live messages not shown while detached
    olderDone: false,   // the store has nothing older than the oldest shown
    loadingOlder: false,
    source: null,
    retryTimer: 0,
    retrying: false,    // the page's own retry of a refused stream is scheduled
    retryDelay: RETRY_MIN_MS,
    dropped: false,     // the stream was lost since the page last saw it open
    checking: false,    // a stream came back; arrivals wait until the server is known to be the same
    check: 0,           // which reconnect's check is the current one
    missedUpTo: 0,      // the newest seq stored when it came back: arrivals up to it were missed
    missed: 0,
    hiddenTimer: 0,
    paused: false,      // the stream was given up while the tab was hidden
    postKey: null,      // Idempotency-Key of the message being posted, kept for its retries
    posting: false,
  };

  // --- connection -----------------------------------------------------------

  function setConn(s) {
    ui.conn.dataset.state = s;
    ui.connText.textContent = s;
  }

  function connState() {
    if (!navigator.onLine) return 'offline';
    if (state.paused) return 'paused';
    const es = state.source;
    // A refused stream (a 503) that the page is about to try again is being
    // reconnected, not offline: the browser is online.
    if (!es || es.readyState === EventSource.CLOSED) return state.retrying ? 'reconnecting' : 'offline';
    if (es.readyState === EventSource.OPEN) return 'live';
    return state.dropped ? 'reconnecting' : 'connecting';
  }

  function feedUrl() {
    const q = new URLSearchParams();
    if (state.filter) q.set('user_id', state.filter);
    // A stream this page opens itself (after the browser gave up) resumes
    // here; the browser's own reconnects send Last-Event-ID, which wins.
    if (state.lastSeq > 0) q.set('since', String(state.lastSeq));
    else q.set('history', String(HISTORY));
    const query = q.toString();
    return '/api/feed' + (query ? '?' + query : '');
  }

  function connect() {
    clearTimeout(state.retryTimer);
    state.retrying = false;
    if (state.source) state.source.close();
    const es = new EventSource(feedUrl());
    state.source = es;
    es.onopen = () => {
      if (es !== state.source) return;
      state.retryDelay = RETRY_MIN_MS;
      if (state.dropped) {
        state.dropped = false;
        checkResume();
      }
      setConn(connState());
    };
    es.onmessage = (e) => onMessage(es, e);
    es.addEventListener('reset', () => {
      if (es !== state.source) return;
      // The server has none of the seqs this page has seen (another database):
      // what the page shows cannot be continued, only started again.
      restart();
      say('The server\'s feed started over; showing it afresh.');
    });
    es.onerror = () => {
      if (es !== state.source) return;
      state.dropped = true;
      // CONNECTING: the browser retries by itself, resuming with Last-Event-ID.
      // CLOSED (an answer other than the stream, e.g. 503): the page retries.
      if (es.readyState === EventSource.CLOSED) scheduleRetry();
      setConn(connState());
    };
  }

  function scheduleRetry() {
    clearTimeout(state.retryTimer);
    const delay = state.retryDelay * (0.75 + Math.random() / 2);
    state.retryDelay = Math.min(state.retryDelay * 2, RETRY_MAX_MS);
    state.retrying = true;
    state.retryTimer = setTimeout(connect, delay);
  }

  window.addEventListener('offline', () => setConn('offline'));
  window.addEventListener('online', () => {
    const es = state.source;
    if (!es || es.readyState === EventSource.CLOSED) connect();
    setConn(connState());
  });

  async function getJson(path) {
    const r = await fetch(path, {cache: 'no-store', signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS)});
    const body = await r.json().catch(() => null);
    if (!r.ok || !body || !Array.isArray(body.messages)) throw new Error(`the server answered ${r.status}`);
    return body.messages;
  }

  // A stream that came back resumed after lastSeq, by the browser's
  // Last-Event-ID or the page's ?since=. Whether that continues what the
  // page shows, only the store can say: a server on another database (a
  // restore, a fresh one at the same address) may hold that seq for another
  // message, and would send its later ones as if they followed. So the page
  // holds what arrives until it has read, by seq and not by any clock, the
  // message it saw last and the newest one stored: a different message
  // starts the page over; arrivals up to the newest were posted while the
  // stream was down.
  async function checkResume() {
    const generation = state.generation;
    const check = ++state.check;  // a later reconnect's check supersedes this one
    const seq = state.lastSeq;
    const id = state.lastId;
    state.checking = true;
    state.missed = 0;
    state.missedUpTo = 0;
    let newest = 0;
    try {
      const mine = new URLSearchParams({limit: '1', before: String(seq + 1)});
      if (state.filter) mine.set('user_id', state.filter);
      const [last, top] = await Promise.all([seq > 0 ? getJson('/api/messages?' + mine.toString()) : null,
        getJson('/api/messages?limit=1')]);
      if (generation !== state.generation || check !== state.check) return;
      if (last && (!last.length || last[0].seq !== seq || last[0].id !== id)) {
        restart();
        say('The server\'s feed is not the one this page showed; showing it afresh.');
        return;
      }
      newest = top.length ? top[0].seq : 0;
    } catch {
      // Unknown: nothing is highlighted, and what arrives is shown.
    }
    if (generation !== state.generation || check !== state.check) return;
    state.checking = false;
    state.missedUpTo = newest > seq ? newest : 0;
    flush();
  }

  function onMessage(es, e) {
    if (es !== state.source) return;
    const seq = Number(e.lastEventId);
    let msg;
    try {
      msg = JSON.parse(e.data);
    } catch {
      return;
    }
    if (!Number.isSafeInteger(seq) || seq <= 0 || !msg || typeof msg !== 'object') return;
    // The stream is in seq order and resumes after the last one seen, so
    // anything at or below it is a repeat.
    if (seq <= state.lastSeq) return;
    state.lastSeq = seq;
    state.lastId = String(msg.id);
    state.pending.push({seq, msg, missed: false});
    // Events come one task each; rendering them in batches keeps a burst
    // of thousands to a few layouts.
    if (!state.flushTimer) state.flushTimer = setTimeout(flush, 30);
  }

  function flush() {
    clearTimeout(state.flushTimer);
    state.flushTimer = 0;
    if (state.checking) return;  // checkResume() flushes when it knows
    const batch = state.pending;
    state.pending = [];
    for (const en of batch) {
      if (!state.missedUpTo) break;
      if (en.seq <= state.missedUpTo) {
        en.missed = true;
        state.missed++;
      } else {
        state.missedUpTo = 0;  // caught up: from here on it is live
      }
    }
    if (state.detached) {
      state.waiting += batch.length;
      showNewer();
    } else {
      merge(batch, 'newest');
    }
    if (state.missed) {
      say(state.missed === 1
        ? 'Back online: 1 message posted while the connection was down is highlighted.'
        : `Back online: ${state.missed} messages posted while the connection was down are highlighted.`);
    }
  }

  // --- the list -----------------------------------------------------------

  // Adds entries to the list in seq order, each seq once, and keeps at most
  // DOM_CAP: 'newest' drops the oldest (older pages bring them back),
  // 'oldest' drops the newest (the "newest" button brings them back).
  function merge(entries, keep) {
    const have = new Set(state.items.map((it) => it.seq));
    const fresh = [];
    for (const en of entries) {
      if (have.has(en.seq)) continue;
      have.add(en.seq);
      fresh.push(en);
    }
    if (fresh.length) {
      let kept = state.items.concat(fresh).sort((a, b) => b.seq - a.seq);
      let dropped = [];
      if (kept.length > DOM_CAP) {
        if (keep === 'newest') {
          dropped = kept.slice(DOM_CAP);
          kept = kept.slice(0, DOM_CAP);
          state.olderDone = false;
        } else {
          dropped = kept.slice(0, kept.length - DOM_CAP);
          kept = kept.slice(kept.length - DOM_CAP);
          state.detached = true;
          showNewer();
        }
      }
      for (const it of dropped) if (it.el) it.el.remove();
      // What is left on the page is in order; put each new one in its place.
      let node = ui.list.firstElementChild;
      for (const it of kept) {
        if (!it.el) it.el = render(it);
        if (it.el === node) node = node.nextElementSibling;
        else ui.list.insertBefore(it.el, node);
      }
      state.items = kept;
    }
    ui.empty.hidden = state.items.length > 0;
    updateOlder();
    return fresh.length;
  }

  function clearList() {
    for (const it of state.items) it.el.remove();
    state.items = [];
    ui.empty.hidden = false;
  }

  function render(it) {
    const li = document.createElement('li');
    li.className = it.missed ? 'msg missed' : 'msg';
    li.dataset.seq = String(it.seq);
    const meta = document.createElement('div');
    meta.className = 'meta';
    const author = document.createElement('button');
    author.type = 'button';
    author.className = 'author';
    author.textContent = String(it.msg.user_id);
    author.title = 'Show only messages by ' + author.textContent;
    const time = document.createElement('time');
    const at = Date.parse(it.msg.created_at);
    if (!Number.isNaN(at)) {
      time.dateTime = new Date(at).toISOString();
      time.title = new Date(at).toLocaleString();
      time.textContent = ago(at, Date.now());
    }
    meta.append(author, time);
    const content = document.createElement('p');
    content.className = 'content';
    content.textContent = String(it.msg.content);
    li.append(meta, content);
    return li;
  }

  const relative = new Intl.RelativeTimeFormat(undefined, {numeric: 'auto', style: 'short'});
  const UNITS = [['year', 31536e6], ['month', 2592e6], ['week', 6048e5], ['day', 864e5],
    ['hour', 36e5], ['minute', 6e4], ['second', 1e3]];

  function ago(at, now) {
    const age = Math.max(0, now - at);  // a clock ahead of ours is "now", not the future
    if (age < 10e3) return relative.format(0, 'second');
    for (const [unit, ms] of UNITS) {
      if (age >= ms) return relative.format(-Math.floor(age / ms), unit);
    }
    return relative.format(0, 'second');
  }

  setInterval(() => {
    const now = Date.now();
    for (const it of state.items) {
      const time = it.el.querySelector('time');
      if (time.dateTime) time.textContent = ago(Date.parse(time.dateTime), now);
    }
  }, 15e3);

  // --- older and newer pages ----------------------------------------------

  function updateOlder() {
    ui.older.disabled = state.loadingOlder || state.olderDone;
    ui.older.textContent = state.loadingOlder ? 'Loading…'
      : state.olderDone ? 'No older messages' : 'Older messages';
  }

  async function fetchPage(params) {
    const q = new URLSearchParams({limit: String(PAGE), ...params});
    if (state.filter) q.set('user_id', state.filter);
    const r = await fetch('/api/messages?' + q.toString(), {cache: 'no-store'});
    const body = await r.json().catch(() => null);
    if (!r.ok || !body || !Array.isArray(body.messages)) {
      throw new Error(body && typeof body.error === 'string' ? body.error : `the server answered ${r.status}`);
    }
    return {
      entries: body.messages.filter((m) => Number.isSafeInteger(m.seq)).map((m) => ({seq: m.seq, msg: m})),
      last: body.next_before === null,
    };
  }

  async function loadOlder() {
    if (state.loadingOlder) return;
    const generation = state.generation;
    const oldest = state.items.length ? state.items[state.items.length - 1].seq : 0;
    state.loadingOlder = true;
    updateOlder();
    try {
      const page = await fetchPage(oldest ? {before: String(oldest)} : {});
      if (generation !== state.generation) return;
      state.olderDone = page.last;
      merge(page.entries, 'oldest');
    } catch (err) {
      if (generation === state.generation) say('Could not load older messages: ' + err.message);
    } finally {
      if (generation === state.generation) {
        state.loadingOlder = false;
        updateOlder();
      }
    }
  }

  function showNewer() {
    ui.newer.hidden = !state.detached;
    ui.newer.textContent = state.waiting
      ? `Show the newest messages (${state.waiting} new)` : 'Show the newest messages';
  }

  async function loadNewest() {
    const generation = ++state.generation;
    state.detached = false;
    state.waiting = 0;
    state.olderDone = false;
    state.loadingOlder = false;
    showNewer();
    clearList();
    // Live messages from now on go straight into the list; the page read
    // below may hold some of them too, and merge keeps each seq once.
    try {
      const page = await fetchPage({});
      if (generation !== state.generation) return;
      state.olderDone = page.last;
      merge(page.entries, 'newest');
    } catch (err) {
      if (generation === state.generation) say('Could not load the newest messages: ' + err.message);
    }
    window.scrollTo(0, 0);
  }

  // --- filter by author ---------------------------------------------------

  function filterFromUrl() {
    const user = new URLSearchParams(location.search).get('user');
    return user && userIdOk(user) ? user : null;
  }

  function restart() {
    state.generation++;
    clearTimeout(state.flushTimer);
    state.flushTimer = 0;
    state.pending = [];
    state.lastSeq = 0;
    state.lastId = '';
    state.checking = false;
    state.detached = false;
    state.waiting = 0;
    state.olderDone = false;
    state.loadingOlder = false;
    state.dropped = false;
    state.missedUpTo = 0;
    state.missed = 0;
    clearList();
    showNewer();
    updateOlder();
    say('');
    connect();
    setConn(connState());
  }

  function showFilter() {
    ui.filter.hidden = !state.filter;
    ui.filterUser.textContent = state.filter || '';
    // Isolated (FSI ... PDI), as the page's CSS isolates names: a
    // right-to-left override in an id must not turn the rest around.
    document.title = state.filter ? '\u2068' + state.filter + '\u2069 · feed' : 'feed';
  }

  function setFilter(user, how) {
    if (user === state.filter) return;
    state.filter = user;
    const url = new URL(location.href);
    if (user) url.searchParams.set('user', user);
    else url.searchParams.delete('user');
    if (how === 'push') history.pushState(null, '', url);
    else if (how === 'replace') history.replaceState(null, '', url);
    showFilter();
    restart();
  }

  ui.list.addEventListener('click', (e) => {
    const author = e.target.closest('.author');
    if (!author) return;
    setFilter(author.textContent, 'push');
    // The button pressed is gone with the list; keep the keyboard nearby.
    ui.clearFilter.focus();
  });
  ui.clearFilter.addEventListener('click', () => {
    setFilter(null, 'push');
    ui.text.focus();
  });
  window.addEventListener('popstate', () => setFilter(filterFromUrl(), 'none'));
  ui.older.addEventListener('click', loadOlder);
  ui.newer.addEventListener('click', loadNewest);

  // --- compose ------------------------------------------------------------

  function updateCounter() {
    const n = [...ui.text.value].length;  // code points, as the server counts
    ui.counter.textContent = `${n} / ${LIMIT}`;
    ui.counter.classList.toggle('over', n > LIMIT);
    // Nothing to post: an empty box (a second Ctrl+Enter after a post)
    // is not sent, rather than answered with the server's refusal.
    ui.send.disabled = state.posting || n === 0;
  }

  function showPostStatus(text, kind) {
    ui.postStatus.hidden = !text;
    ui.postStatus.textContent = text;
    ui.postStatus.dataset.kind = kind || '';
    ui.postStatus.setAttribute('role', kind === 'error' ? 'alert' : 'status');
  }

  function newKey() {
    const bytes = crypto.getRandomValues(new Uint8Array(16));
    return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
  }

  function say(text) {
    ui.notice.textContent = text;
  }

  async function post(e) {
    e.preventDefault();
    if (state.posting) return;
    const userId = ui.user.value.trim();
    const content = ui.text.value;
    try {
      localStorage.setItem('feed.user_id', userId);
    } catch {
      // Storage may be off; the user id just is not remembered.
    }
    // One key per message, reused by its retries: after an "outcome unknown"
    // 503 a retry is stored at most once. Editing starts a new message.
    state.postKey = state.postKey || newKey();
    state.posting = true;
    ui.send.disabled = true;
    showPostStatus('Posting…', 'pending');
    try {
      const r = await fetch('/api/messages', {
        method: 'POST',
        headers: {'Content-Type': 'application/json', 'Idempotency-Key': state.postKey},
        body: JSON.stringify({user_id: userId, content}),
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      });
      const body = await r.json().catch(() => null);
      if (r.status === 202) {
        state.postKey = null;
        // What was typed while the post was on its way is kept for the next.
        if (ui.text.value === content) ui.text.value = '';
        showPostStatus('Posted.', 'ok');
        ui.text.focus();
        return;
      }
      let text = body && typeof body.error === 'string' ? body.error : `The server answered ${r.status}.`;
      const retryAfter = r.headers.get('Retry-After');
      if (r.status === 503 && retryAfter) text += ` (${r.status}; retry after ${retryAfter} s)`;
      else text += ` (${r.status})`;
      showPostStatus(text, 'error');
    } catch (err) {
      // The key is kept: posting again cannot store the message twice.
      showPostStatus(err.name === 'TimeoutError'
        ? `The server did not answer within ${REQUEST_TIMEOUT_MS / 1000} s; the message may have been stored. Post again to make sure.`
        : 'Could not reach the server: ' + err.message, 'error');
    } finally {
      state.posting = false;
      updateCounter();
    }
  }

  ui.form.addEventListener('submit', post);
  ui.text.addEventListener('input', () => {
    state.postKey = null;
    updateCounter();
  });
  ui.user.addEventListener('input', () => {
    state.postKey = null;
  });
  ui.text.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) {
      e.preventDefault();
      if (!ui.send.disabled) ui.form.requestSubmit();
    }
  });

  // --- hidden tabs ------------------------------------------------------

  document.addEventListener('visibilitychange', () => {
    clearTimeout(state.hiddenTimer);
    if (document.visibilityState === 'hidden') {
      state.hiddenTimer = setTimeout(() => {
        if (!state.source) return;
        state.source.close();
        state.source = null;
        clearTimeout(state.retryTimer);
        state.retrying = false;
        state.paused = true;
        setConn(connState());
      }, HIDDEN_CLOSE_MS);
    } else if (state.paused) {
      // Resumes after lastSeq; what came meanwhile is shown as missed.
      state.paused = false;
      state.dropped = true;
      connect();
      setConn(connState());
    }
  });

  // --- start --------------------------------------------------------------

  try {
    ui.user.value = localStorage.getItem('feed.user_id') || '';
  } catch {
    // As above.
  }
  updateCounter();
  const initial = filterFromUrl();
  state.filter = initial;
  if (!initial && new URLSearchParams(location.search).has('user')) {
    // An author no one can be: drop it from the address rather than keep a
    // filter that shows nothing.
    const url = new URL(location.href);
    url.searchParams.delete('user');
    history.replaceState(null, '', url);
  }
  showFilter();
  restart();
})();
