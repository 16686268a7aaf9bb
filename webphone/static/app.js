// The browser phone: a feature phone that dials the gateway through its
// real callback routes. Each aggregator's callback is built here exactly as
// that aggregator builds it, sent to ussd/<dialect> (which the server
// forwards, unchanged, to the gateway's route of the same name), and its
// reply is shown as that aggregator's handset shows it. Every URL is
// relative: the page works wherever it is mounted.
'use strict';

(() => {
  const $ = (id) => document.getElementById(id);
  const app = $('app');
  const el = {
    status: $('status'), screen: $('screen'), text: $('screen-text'), entry: $('entry-view'),
    meter: $('meter'), modeView: $('mode-view'), mode: $('mode'), call: $('call'), hangup: $('hangup'),
    clear: $('clear'), form: $('settings'), dialect: $('dialect'), phone: $('msisdn'), code: $('code'),
    texts: $('texts'), textsNote: $('texts-note'), wire: $('wire'),
  };
  const config = {
    serviceCode: app.dataset.serviceCode || '',
    limit: Number(app.dataset.limit) || 160,
    inbox: app.dataset.inbox === 'on',
  };

  // What a handset shows when the network gives up on a session: a reply
  // the aggregator cannot read, an error status, or no answer in time.
  const NETWORK_ERROR = 'Connection problem or invalid MMI code.';
  const IDLE_TEXT = 'Type a short code and press the green key.';
  const MAX_ENTRY = 160; // no handset sends a longer reply
  const POLL_MS = 1500; // the texts panel's refresh while it polls
  const POLL_AFTER_MS = 60000; // how long it keeps that pace after a call
  const IDLE_POLL_MS = 3000; // its pace otherwise
  const TAP_MS = 1000; // a second press of a key within this cycles letters

  // GSM 7-bit units: the extension table's characters count two.
  const GSM_EXTENSION = '^{}\\[~]|\u20ac';
  const units = (s) => { let n = 0; for (const ch of s) n += GSM_EXTENSION.includes(ch) ? 2 : 1; return n; };

  // extensionOf returns what a dialled string adds to the gateway's code
  // ("*384*123#" and "*384*123*4821#" give "4821"), or null when it does
  // not extend it.
  function extensionOf(dialled) {
    const stem = config.serviceCode.replace(/#$/, '');
    if (!stem || !dialled.endsWith('#')) return null;
    const body = dialled.slice(0, -1);
    return body.startsWith(stem + '*') ? body.slice(stem.length + 1) : null;
  }
  // serviceOf is the service code the network reports for a dialled
  // string: the gateway's own when the string extends it.
  const serviceOf = (dialled) => (extensionOf(dialled) === null ? dialled : config.serviceCode);
  const bare = (phone) => phone.replace(/^\+/, ''); // Ghanaian aggregators, HollaTags: no "+"
  const hex = (bytes) => Array.from(crypto.getRandomValues(new Uint8Array(bytes)), (b) => b.toString(16).padStart(2, '0')).join('');
  const digits = (n) => Array.from(crypto.getRandomValues(new Uint8Array(n)), (b) => String(b % 10)).join('');

  const form = (route, fields) => ({
    method: 'POST', route, headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(fields).toString(),
  });
  const json = (route, value) => ({
    method: 'POST', route, headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(value),
  });
  const query = (route, fields) => ({ method: 'GET', route, query: new URLSearchParams(fields).toString() });

  // readJSON reads an aggregator's JSON reply, or throws what a handset
  // would show for anything else.
  function readJSON(res) {
    if (res.status !== 200) throw new Error(`HTTP ${res.status}`);
    try {
      const v = JSON.parse(res.body);
      if (v && typeof v === 'object') return v;
    } catch (_) { /* shown below */ }
    throw new Error('the reply is not JSON');
  }
  const str = (v) => (typeof v === 'string' ? v : '');

  // Each dialect: how the aggregator opens a session (start), sends a
  // reply (input), tells the gateway the user hung up (close, when it
  // does), reports a late answer (timeout, when it does), and reads the
  // gateway's answer into the text shown and whether the session ends.
  const dialects = {
    // Africa's Talking: a form with the whole input history joined by
    // "*". An extension of the code arrives as the first input, the
    // service code being the gateway's own; answers start CON or END.
    africastalking: {
      deadline: 10000,
      start(c) {
        const ext = extensionOf(c.dialled);
        c.serviceCode = serviceOf(c.dialled);
        c.history = ext ? [ext] : [];
        return this.hop(c);
      },
      input(c, s) { c.history.push(s); return this.hop(c); },
      hop(c) {
        return form('africastalking', {
          sessionId: c.session, serviceCode: c.serviceCode, phoneNumber: c.phone, networkCode: '62130', text: c.history.join('*'),
        });
      },
      read(res) {
        if (res.status !== 200) throw new Error(`HTTP ${res.status}`);
        const m = /^(CON|END)(?: ([\s\S]*))?$/.exec(res.body);
        if (!m) throw new Error('the reply starts with neither CON nor END');
        return { text: m[2] || '', end: m[1] === 'END' };
      },
    },

    // Hubtel: JSON; Initiation carries the whole dialled string, each
    // Response only the latest input, with a Sequence and the ClientState
    // the gateway returned last; Release ends.
    hubtel: {
      deadline: 5000,
      start(c) {
        c.seq = 1;
        c.clientState = '';
        return this.hop(c, 'Initiation', c.dialled);
      },
      input(c, s) { c.seq++; return this.hop(c, 'Response', s); },
      close(c) { c.seq++; return this.hop(c, 'Release', ''); },
      timeout(c) { return this.hop(c, 'Timeout', ''); },
      hop(c, type, message) {
        const state = c.clientState;
        c.clientState = ''; // sent once
        return json('hubtel', {
          Type: type, Mobile: bare(c.phone), SessionId: c.session, ServiceCode: serviceOf(c.dialled).replace(/^\*|#$/g, ''),
          Message: message, Operator: 'mtn', Sequence: c.seq, ClientState: state,
        });
      },
      read(res, c) {
        const r = readJSON(res);
        const type = str(r.Type).toLowerCase();
        if (type !== 'response' && type !== 'release') throw new Error('the reply\'s Type is neither Response nor Release');
        c.clientState = str(r.ClientState);
        return { text: str(r.Message), end: type === 'release' };
      },
    },

    // Arkesel: JSON with newSession, the dialled string on a new session
    // and the latest input after; continueSession false ends.
    arkesel: {
      deadline: 10000,
      start(c) { return this.hop(c, true, c.dialled); },
      input(c, s) { return this.hop(c, false, s); },
      hop(c, first, data) {
        return json('arkesel', {
          sessionID: c.session, userID: 'webphone', newSession: first, msisdn: bare(c.phone), userData: data, network: 'MTN',
        });
      },
      read(res) {
        const r = readJSON(res);
        if (typeof r.continueSession !== 'boolean') throw new Error('the reply has no continueSession');
        return { text: str(r.message), end: !r.continueSession };
      },
    },

    // Nalo: JSON with MSGTYPE true on the first dial (USERDATA the dialled
    // code), false after (USERDATA the latest input); MSGTYPE false in
    // the answer ends.
    nalo: {
      deadline: 10000,
      start(c) { return this.hop(c, true, c.dialled); },
      input(c, s) { return this.hop(c, false, s); },
      hop(c, first, data) {
        return json('nalo', {
          USERID: 'webphone', MSISDN: bare(c.phone), USERDATA: data, MSGTYPE: first, NETWORK: 'MTN', SESSIONID: c.session,
        });
      },
      read(res) {
        const r = readJSON(res);
        if (typeof r.MSGTYPE !== 'boolean') throw new Error('the reply has no MSGTYPE');
        return { text: str(r.MSG), end: !r.MSGTYPE };
      },
    },

    // HollaTags: a GET whose query carries session_operation (begin,
    // continue, end), the dialled string on begin and the latest input
    // after; session_operation end in the answer ends.
    hollatags: {
      deadline: 10000,
      start(c) { return this.hop(c, 'begin', c.dialled); },
      input(c, s) { return this.hop(c, 'continue', s); },
      close(c) { return this.hop(c, 'end', ''); },
      hop(c, op, msg) {
        return query('hollatags', {
          session_msisdn: bare(c.phone), session_operation: op, session_msg: msg, session_id: c.session,
          session_from: serviceOf(c.dialled), session_type: '1', session_mno: 'MTN',
        });
      },
      read(res) {
        const r = readJSON(res);
        const op = str(r.session_operation).toLowerCase();
        if (op !== 'continue' && op !== 'end') throw new Error('the reply\'s session_operation is neither continue nor end');
        return { text: str(r.session_msg), end: op === 'end' };
      },
    },
  };

  // The phone's state: idle (dialling), waiting (a hop in flight), open
  // (a screen that expects a reply), ended (a final screen).
  let phase = 'idle';
  let entry = '';
  let call = null;
  let hops = 0;
  let tap = null; // the last multi-tap key: {key, i, at}
  const modes = ['123', 'abc', 'ABC'];
  let mode = 0;

  const LETTERS = {
    1: '.,?!@\'-_1', 2: 'abc2', 3: 'def3', 4: 'ghi4', 5: 'jkl5', 6: 'mno6', 7: 'pqrs7', 8: 'tuv8', 9: 'wxyz9', 0: ' 0', '*': '*', '#': '#',
  };

  function setPhase(p) {
    phase = p;
    app.dataset.phase = p;
    el.call.textContent = p === 'open' ? 'Send' : p === 'ended' ? 'OK' : 'Call';
  }
  const setStatus = (s) => { el.status.textContent = s; };
  const label = (name) => {
    const o = Array.from(el.dialect.options).find((x) => x.value === name);
    return o ? o.textContent : name;
  };

  // show puts a screen up, line breaks kept, scrolled to its top, and
  // counts it against the screen budget.
  function show(text, counted) {
    el.text.textContent = text;
    el.screen.scrollTop = 0;
    if (counted) {
      const n = units(text);
      el.meter.textContent = `${n}/${config.limit} characters`;
      el.meter.classList.toggle('over', n > config.limit);
    } else {
      el.meter.textContent = '';
      el.meter.classList.remove('over');
    }
  }
  const renderEntry = () => { el.entry.textContent = entry; };

  function toIdle() {
    call = null;
    entry = '';
    tap = null;
    renderEntry();
    setPhase('idle');
    show(IDLE_TEXT, false);
    setStatus('Idle');
  }

  function dial(dialled) {
    dialled = dialled.trim();
    const name = el.dialect.value;
    const d = dialects[name];
    const phone = el.phone.value.trim();
    if (!dialled) { setStatus('Type a short code first'); return; }
    if (!d) { setStatus('Choose an aggregator'); return; }
    if (!phone) { setStatus('Enter a phone number'); el.phone.focus(); return; }
    const prefix = { africastalking: 'ATUid_', hubtel: '', arkesel: 'ark_', nalo: '', hollatags: '' }[name];
    const session = name === 'nalo' || name === 'hollatags' ? digits(18) : prefix + hex(16);
    call = { name, d, phone, dialled, session, replies: 0, ended: false, ctrl: null };
    app.dataset.session = session;
    entry = '';
    tap = null;
    renderEntry();
    show(`Calling ${dialled}`, false);
    setStatus(`Calling ${dialled} over ${label(name)}…`);
    watchInbox();
    hop(call, d.start(call));
  }

  // hop sends one callback and shows the answer, as the aggregator's
  // handset would; the aggregator's deadline bounds the wait.
  async function hop(c, req) {
    setPhase('waiting');
    const ctrl = new AbortController();
    c.ctrl = ctrl;
    const timer = setTimeout(() => ctrl.abort('deadline'), c.d.deadline);
    let res;
    try {
      res = await send(req, ctrl.signal);
    } catch (_) {
      clearTimeout(timer);
      if (c !== call || c.ended) return; // hung up meanwhile
      if (ctrl.signal.reason === 'deadline') {
        if (c.d.timeout) notify(c.d.timeout(c), 'the timeout');
        fail(c, `No answer within ${c.d.deadline / 1000} s, ${label(c.name)}'s deadline`);
      } else {
        fail(c, 'The gateway could not be reached');
      }
      return;
    }
    clearTimeout(timer);
    if (c !== call || c.ended) return;
    el.wire.textContent = `${req.method} ussd/${req.route}${req.query ? '?…' : ''}\n→ ${res.status} ${res.type}\n\n${res.body}`;
    let out;
    try {
      out = c.d.read(res, c);
    } catch (err) {
      fail(c, `${label(c.name)} could not read the answer: ${err.message}`);
      return;
    }
    hops++;
    app.dataset.hops = String(hops);
    show(out.text, true);
    if (out.end) {
      finish(c, 'Session ended');
    } else {
      setPhase('open');
      setStatus('Type a reply, then Send');
    }
  }

  async function send(req, signal) {
    const url = `ussd/${req.route}${req.query ? `?${req.query}` : ''}`;
    const r = await fetch(url, {
      method: req.method, headers: { ...(req.headers || {}), 'X-Ussdlink-Phone': '1' }, body: req.body, signal, cache: 'no-store', credentials: 'same-origin',
    });
    return { status: r.status, type: r.headers.get('Content-Type') || '', body: await r.text() };
  }

  // notify sends a callback whose answer nothing waits for (a hang-up, a
  // timeout); the wire panel shows what came back.
  function notify(req, why) {
    send(req, undefined).then((res) => {
      el.wire.textContent = `${req.method} ussd/${req.route}${req.query ? '?…' : ''} (${why})\n→ ${res.status} ${res.type}\n\n${res.body}`;
    }, () => {});
  }

  function fail(c, why) {
    c.ended = true;
    show(NETWORK_ERROR, false);
    setPhase('ended');
    setStatus(why);
    watchInbox();
  }

  function finish(c, why) {
    c.ended = true;
    setPhase('ended');
    setStatus(`${why}: press OK or End`);
    watchInbox();
  }

  function sendEntry() {
    if (!entry || !call) return;
    const s = entry;
    entry = '';
    tap = null;
    renderEntry();
    call.replies++;
    hop(call, call.d.input(call, s));
  }

  function hangUp() {
    switch (phase) {
      case 'idle':
        entry = '';
        renderEntry();
        return;
      case 'ended':
        toIdle();
        return;
    }
    const c = call;
    c.ended = true;
    if (c.ctrl) c.ctrl.abort('hangup');
    if (c.d.close) notify(c.d.close(c), 'the hang-up');
    entry = '';
    renderEntry();
    show('Call ended', false);
    setPhase('ended');
    setStatus('You hung up');
    watchInbox();
  }

  function callKey() {
    switch (phase) {
      case 'idle': dial(entry || el.code.value); return;
      case 'open': sendEntry(); return;
      case 'ended': toIdle(); return;
    }
  }

  // typed adds what was typed, if this phase takes it: a dial takes
  // digits, "*" and "#"; a reply takes any character.
  function typed(s) {
    if (phase === 'ended') toIdle();
    if (phase === 'waiting') return false;
    if (phase === 'idle' && !/^[0-9*#]$/.test(s)) return false;
    if (entry.length >= MAX_ENTRY) return true;
    entry += s;
    renderEntry();
    return true;
  }

  function backspace() {
    tap = null;
    if (phase === 'open' || phase === 'idle') {
      entry = entry.slice(0, -1);
      renderEntry();
    }
  }

  // keypad is a press of one of the phone's keys: a digit, or in a reply
  // with letters on, the next letter of that key.
  function keypad(k) {
    if (phase !== 'open' || mode === 0) {
      tap = null;
      typed(k);
      return;
    }
    const letters = LETTERS[k];
    const now = Date.now();
    const cased = (ch) => (mode === 2 ? ch.toUpperCase() : ch);
    if (tap && tap.key === k && now - tap.at < TAP_MS && entry.length > 0) {
      tap.i = (tap.i + 1) % letters.length;
      entry = entry.slice(0, -1) + cased(letters[tap.i]);
      renderEntry();
    } else {
      tap = { key: k, i: 0 };
      typed(cased(letters[0]));
    }
    tap.at = now;
  }

  function cycleMode() {
    mode = (mode + 1) % modes.length;
    tap = null;
    el.mode.textContent = `Keypad: ${modes[mode]}`;
    el.mode.setAttribute('aria-pressed', String(mode !== 0));
    el.modeView.textContent = modes[mode];
  }

  // The texts panel: what the sandbox SMS provider sent to the phone. A
  // phone gets texts at any time (an invitation comes before any call), so
  // it is looked at every few seconds while the page is in view, and more
  // often while a call is on and for a while after one.
  let pollUntil = 0;
  let pollTimer = null;
  let loading = false;
  let shown = { phone: '', count: -1 };

  function watchInbox() {
    if (!config.inbox) return;
    pollUntil = Date.now() + POLL_AFTER_MS;
    if (pollTimer !== null) clearTimeout(pollTimer);
    tick();
  }

  async function tick() {
    pollTimer = null;
    if (!document.hidden) await loadInbox();
    const busy = phase === 'waiting' || phase === 'open' || Date.now() < pollUntil;
    if (pollTimer === null) pollTimer = setTimeout(tick, busy ? POLL_MS : IDLE_POLL_MS);
  }

  async function loadInbox() {
    if (!config.inbox || loading) return;
    const phone = call ? call.phone : el.phone.value.trim();
    if (!phone) return;
    loading = true;
    try {
      const r = await fetch(`inbox?phone=${encodeURIComponent(phone)}`, { headers: { 'X-Ussdlink-Phone': '1' }, cache: 'no-store', credentials: 'same-origin' });
      if (!r.ok) return;
      const list = (await r.json()) || [];
      if (Array.isArray(list)) renderTexts(phone, list);
    } catch (_) {
      // the next poll tries again
    } finally {
      loading = false;
    }
  }

  function renderTexts(phone, list) {
    if (shown.phone === phone && shown.count === list.length) return;
    const before = shown.phone === phone ? shown.count : list.length;
    shown = { phone, count: list.length };
    el.texts.replaceChildren(...list.map((m, i) => {
      const li = document.createElement('li');
      if (i >= before) li.className = 'new';
      const meta = document.createElement('span');
      meta.className = 'meta';
      meta.textContent = `Text ${i + 1} to ${str(m.To) || phone}`;
      li.append(meta, document.createTextNode(str(m.Text)));
      return li;
    }).reverse());
    el.textsNote.textContent = list.length
      ? `${list.length} text${list.length === 1 ? '' : 's'} the sandbox SMS provider sent to ${phone}, newest first.`
      : `No texts to ${phone} yet.`;
  }

  // Keys: the on-screen ones, and the keyboard's. A key the form has focus
  // for stays the form's; a focused phone button keeps Enter and Space.
  for (const b of document.querySelectorAll('.handset button')) {
    b.addEventListener('mousedown', (e) => e.preventDefault()); // a click does not take the keyboard's focus
  }
  for (const b of document.querySelectorAll('.keypad [data-key]')) {
    b.addEventListener('click', () => keypad(b.dataset.key));
  }
  el.call.addEventListener('click', callKey);
  el.hangup.addEventListener('click', hangUp);
  el.clear.addEventListener('click', backspace);
  el.mode.addEventListener('click', cycleMode);
  el.form.addEventListener('submit', (e) => {
    e.preventDefault();
    if (phase === 'waiting' || phase === 'open') hangUp();
    toIdle();
    dial(el.code.value);
  });
  el.phone.addEventListener('change', () => {
    shown = { phone: '', count: -1 };
    el.texts.replaceChildren();
    loadInbox();
  });

  document.addEventListener('keydown', (e) => {
    if (e.defaultPrevented || e.isComposing || e.ctrlKey || e.metaKey || e.altKey) return;
    const t = e.target;
    if (t instanceof Element && t.closest('input, select, textarea, summary')) return;
    const onButton = t instanceof HTMLButtonElement;
    switch (e.key) {
      case 'Enter':
        if (onButton) return;
        e.preventDefault();
        callKey();
        return;
      case 'Escape':
        e.preventDefault();
        hangUp();
        return;
      case 'Backspace':
        e.preventDefault();
        backspace();
        return;
      case 'ArrowUp':
      case 'ArrowDown':
        if (t !== document.body && t !== el.screen) return;
        e.preventDefault();
        el.screen.scrollBy(0, (e.key === 'ArrowUp' ? -1 : 1) * 20);
        return;
      case ' ':
        if (onButton) return;
        break;
    }
    if ([...e.key].length !== 1) return;
    tap = null;
    if (typed(e.key)) e.preventDefault();
  });

  toIdle();
  if (!config.inbox) el.texts.hidden = true;
  else tick();
  app.dataset.ready = 'true';
})();
