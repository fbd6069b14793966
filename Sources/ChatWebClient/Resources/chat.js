// The web client: one WebSocket to /ws carrying the line protocol (one text frame per
// line), a login that reads like a form, and a chat view. Server text is only ever
// inserted as text (textContent, never innerHTML).
import { classify, hueOf, ListingReader, loginStep, mentions, prompts, resumeToken, roomEvent } from "/lines.js";

/// How many lines stay in the page: older ones are removed, so a long session stays fast.
const MAX_LINES = 1000;
/// Reconnect delays: doubling from the first to the last, with some randomness.
const RETRY_FIRST_MS = 1000;
const RETRY_LAST_MS = 30000;
const INPUT_HISTORY = 100;
/// Where this browser keeps its resume token (`/token`), and whether it should.
const TOKEN_KEY = "chat.resumeToken";
const REMEMBER_KEY = "chat.stayingSignedIn";

const $ = (id) => document.getElementById(id);
const view = {
  connection: $("connection"),
  login: $("login"),
  loginNotes: $("login-notes"),
  loginForm: $("login-form"),
  loginLabel: $("login-label"),
  loginField: $("login-field"),
  loginError: $("login-error"),
  loginHint: $("login-hint"),
  loginRestart: $("login-restart"),
  loginOffline: $("login-offline"),
  chat: $("chat"),
  roomName: $("room-name"),
  me: $("me"),
  rooms: $("rooms"),
  members: $("members"),
  messages: $("messages"),
  input: $("input"),
};

// Rows received and not yet in the log (see flushRows).
const pendingRows = [];
let rowsFlushScheduled = false;

const state = {
  socket: null,
  step: "connecting",
  name: null,
  room: "#general",
  members: new Map(),
  /// The last /rooms listing, its current room's count kept up to date by arrivals.
  rooms: [],
  commands: [],
  knownNames: new Set(),
  /// Listings the page asked for itself: their rows go to the panes, not the log.
  quietListings: { members: 0, rooms: 0, help: 0, users: 0 },
  listing: new ListingReader(),
  retryDelay: RETRY_FIRST_MS,
  retryTimer: null,
  leftOnPurpose: false,
  unreadMentions: 0,
  history: [],
  historyIndex: 0,
  draft: "",
  /// This connection already tried the stored token (it is tried once per connection).
  triedToken: false,
  /// The stored token was sent and its answer is awaited.
  resuming: false,
  /// A `/token` the page sent itself: its answer is kept, not shown.
  awaitingToken: false,
};

// MARK: Staying signed in

function storedToken() {
  try {
    return localStorage.getItem(TOKEN_KEY);
  } catch {
    return null;
  }
}

function storeToken(token) {
  try {
    if (token) localStorage.setItem(TOKEN_KEY, token);
    else localStorage.removeItem(TOKEN_KEY);
  } catch {
    // Storage off (a private window): the page still works, without staying signed in.
  }
}

function staysSignedIn() {
  try {
    return localStorage.getItem(REMEMBER_KEY) !== "no";
  } catch {
    return false;
  }
}

/// Sends the stored token instead of asking for an address, once per connection.
function resumeIfRemembered() {
  const token = storedToken();
  if (!token || state.triedToken) return false;
  state.triedToken = true;
  showConnection("Signing you back in…");
  return send(`/resume ${token}`);
}

// MARK: Connection

function connect() {
  clearTimeout(state.retryTimer);
  state.retryTimer = null;
  state.leftOnPurpose = false;
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const socket = new WebSocket(`${scheme}//${location.host}/ws`);
  state.socket = socket;
  state.listing = new ListingReader();
  state.triedToken = false;
  state.awaitingToken = false;
  state.resuming = false;
  showConnection("Connecting…");
  view.loginOffline.hidden = true;
  socket.addEventListener("open", () => {
    state.retryDelay = RETRY_FIRST_MS;
    showConnection(null);
  });
  socket.addEventListener("message", (event) => {
    if (typeof event.data === "string") receive(event.data);
  });
  socket.addEventListener("close", (event) => {
    if (state.socket !== socket) return;
    state.socket = null;
    disconnected(event);
  });
}

function send(line) {
  if (state.socket && state.socket.readyState === WebSocket.OPEN) {
    state.socket.send(line);
    return true;
  }
  return false;
}

/// Sends a command whose answer fills a pane instead of the log.
function askQuietly(command, listing) {
  if (send(command)) state.quietListings[listing] += 1;
}

function disconnected(event) {
  const wasChatting = state.step === "chatting";
  state.step = "connecting";
  state.quietListings = { members: 0, rooms: 0, help: 0, users: 0 };
  if (state.leftOnPurpose) {
    showConnection("You left the chat.");
    showLogin();
    view.loginForm.hidden = true;
    view.loginOffline.hidden = false;
    return;
  }
  const delay = Math.round(state.retryDelay * (0.75 + Math.random() * 0.5));
  state.retryDelay = Math.min(RETRY_LAST_MS, state.retryDelay * 2);
  const seconds = Math.max(1, Math.round(delay / 1000));
  const why = event.code === 1000 ? "The server closed the connection." : "Connection lost.";
  showConnection(`${why} Reconnecting in ${seconds} s…`);
  if (wasChatting) addLine({ kind: "system", text: `${why} Reconnecting…` });
  state.retryTimer = setTimeout(connect, delay);
}

function showConnection(text) {
  view.connection.hidden = text === null;
  view.connection.textContent = text ?? "";
}

// MARK: Lines from the server

function receive(line) {
  const token = resumeToken(line);
  if (token !== null) {
    if (staysSignedIn()) storeToken(token);
    if (state.awaitingToken) {
      state.awaitingToken = false;
      return;
    }
  }
  const step = loginStep(line);
  if (step) return enterStep(step, line);
  if (state.step !== "chatting") return loginLine(line);

  // A listing the page asked for goes to its pane only; one the user asked for shows too.
  const open = state.listing.current?.type;
  const listing = state.listing.read(line);
  const type = listing.consumed ? (state.listing.current?.type ?? listing.done?.type ?? open) : null;
  const quiet = type !== null && state.quietListings[type] > 0;
  if (listing.done) finishListing(listing.done);
  if (quiet) return;
  const parsed = classify(line);
  if (parsed.kind === "system") followSystem(parsed.text);
  if (parsed.name) noteName(parsed.name);
  if (line === prompts.goodbye) state.leftOnPurpose = true;
  addLine(parsed);
}

function finishListing(listing) {
  const wasQuiet = state.quietListings[listing.type] > 0;
  if (wasQuiet) state.quietListings[listing.type] -= 1;
  switch (listing.type) {
    case "members":
      state.members = new Map(listing.rows.map((row) => [row.name.toLowerCase(), row]));
      renderMembers();
      break;
    case "rooms":
      state.rooms = listing.rows;
      renderRooms();
      break;
    case "help":
      state.commands = listing.rows;
      break;
    case "users":
      for (const row of listing.rows) noteName(row.name);
      break;
  }
}

function followSystem(text) {
  const event = roomEvent(text);
  if (!event) return;
  if (event.room) {
    state.room = event.room;
    view.roomName.textContent = event.room;
    askQuietly("/who", "members");
    askQuietly("/rooms", "rooms");
  } else if (event.arrived) {
    state.members.set(event.arrived.toLowerCase(), { name: event.arrived });
    noteName(event.arrived);
    renderMembers();
  } else if (event.departed) {
    state.members.delete(event.departed.toLowerCase());
    renderMembers();
  } else if (event.renamed) {
    const [old, renamed] = event.renamed;
    if (state.name && old.toLowerCase() === state.name.toLowerCase()) setName(renamed);
    const row = state.members.get(old.toLowerCase());
    if (row) {
      state.members.delete(old.toLowerCase());
      state.members.set(renamed.toLowerCase(), { ...row, name: renamed });
      renderMembers();
    }
    noteName(renamed);
  }
}

function noteName(name) {
  state.knownNames.add(name);
}

// MARK: Login

function enterStep(step, line) {
  switch (step.step) {
    case "email":
      // Asked again after an error: the error stays next to the field.
      if (state.step === "email" && !state.resuming) return askAgain();
      state.step = "email";
      state.resuming = resumeIfRemembered();
      if (state.resuming) return;
      showLogin();
      askFor("E-mail address", "email", "email", "A 6-digit code will be mailed to you.");
      break;
    case "code":
      if (state.step === "code") return askAgain();
      state.step = "code";
      askFor("Code from the e-mail", "text", "one-time-code", "Type the 6 digits from the mail.");
      view.loginField.inputMode = "numeric";
      view.loginField.maxLength = 6;
      view.loginRestart.hidden = false;
      break;
    case "username":
      if (state.step === "username") return askAgain();
      state.step = "username";
      askFor("Username", "text", "username", step.rules.replace(/^Enter username /, "Username: "));
      break;
    case "chatting":
      state.step = "chatting";
      setName(step.name);
      showConnection(null);
      // Back after a reconnect: the log so far stays.
      showChat({ keepLog: state.resuming });
      state.resuming = false;
      addLine({ kind: "system", text: line.slice(4, -4) });
      askQuietly("/help", "help");
      if (staysSignedIn() && send("/token")) state.awaitingToken = true;
      break;
  }
}

function askFor(label, type, autocomplete, hint) {
  view.loginForm.hidden = false;
  view.loginLabel.textContent = label;
  view.loginField.type = type;
  view.loginField.autocomplete = autocomplete;
  view.loginField.removeAttribute("inputmode");
  view.loginField.removeAttribute("maxlength");
  view.loginField.value = "";
  view.loginHint.textContent = hint;
  view.loginError.textContent = "";
  view.loginRestart.hidden = true;
  view.loginField.disabled = false;
  view.loginField.focus();
}

/// The same prompt again (after an error): the field is free to correct.
function askAgain() {
  view.loginField.disabled = false;
  view.loginField.focus();
  view.loginField.select();
}

/// A line before the user is in: errors go next to the field, the rest above the form.
function loginLine(line) {
  const parsed = classify(line);
  view.loginField.disabled = false;
  if (line === prompts.invalidToken) {
    // The stored token no longer works (expired, signed out elsewhere): the e-mail prompt
    // that follows shows the form, as for a first visit.
    storeToken(null);
    showConnection(null);
    return;
  }
  // The address's slot is still held by this browser's last connection (a server that
  // has not noticed it is gone): a resume takes it over.
  if (parsed.kind === "error" && /already has an active connection$/.test(parsed.text) && resumeIfRemembered()) {
    state.resuming = true;
    return;
  }
  if (parsed.kind === "error") {
    view.loginError.textContent = parsed.text;
    view.loginField.focus();
    view.loginField.select();
    return;
  }
  if (line === prompts.goodbye) state.leftOnPurpose = true;
  const note = document.createElement("p");
  note.textContent = parsed.kind === "system" ? parsed.text : line;
  view.loginNotes.append(note);
  while (view.loginNotes.childElementCount > 6) view.loginNotes.firstElementChild.remove();
}

function showLogin() {
  view.chat.hidden = true;
  view.login.hidden = false;
  $("remember").checked = staysSignedIn();
  view.loginNotes.replaceChildren();
  document.title = "Chat";
}

function showChat({ keepLog = false } = {}) {
  view.login.hidden = true;
  view.chat.hidden = false;
  if (!keepLog) {
    view.messages.replaceChildren();
    pendingRows.length = 0;
  }
  state.members = new Map();
  renderMembers();
  view.input.focus();
}

function setName(name) {
  state.name = name;
  view.me.textContent = `as ${name}`;
  noteName(name);
}

view.loginForm.addEventListener("submit", (event) => {
  event.preventDefault();
  const value = view.loginField.value.trim();
  if (!value) {
    view.loginError.textContent = "Please fill this in.";
    return;
  }
  if (send(value)) {
    view.loginError.textContent = "";
    view.loginField.disabled = true;
  }
});

view.loginRestart.addEventListener("click", () => {
  // A new address starts over: the server's own prompt comes back on a new connection.
  if (state.socket) state.socket.close(1000);
  state.retryDelay = RETRY_FIRST_MS;
});

$("remember").addEventListener("change", (event) => {
  try {
    localStorage.setItem(REMEMBER_KEY, event.currentTarget.checked ? "yes" : "no");
  } catch {
    // Nothing to remember with.
  }
  if (!event.currentTarget.checked) storeToken(null);
});

$("reconnect-now").addEventListener("click", () => {
  state.retryDelay = RETRY_FIRST_MS;
  connect();
});

// MARK: The log

function addLine(parsed) {
  const row = document.createElement("p");
  row.className = `line ${parsed.kind}`;
  switch (parsed.kind) {
    case "chat":
    case "privateMessage":
    case "privateEcho": {
      const who = document.createElement("span");
      who.className = "who";
      if (parsed.kind === "privateMessage") {
        who.textContent = `${parsed.name} → you`;
      } else if (parsed.kind === "privateEcho") {
        who.textContent = `you → ${parsed.name}`;
      } else {
        who.textContent = parsed.name;
      }
      const colour = parsed.kind === "privateEcho" ? state.name ?? parsed.name : parsed.name;
      who.style.setProperty("--hue", hueOf(colour));
      const text = document.createElement("span");
      text.className = "text";
      text.textContent = parsed.text;
      row.append(who, text);
      if (parsed.kind !== "privateEcho" && parsed.name !== state.name && mentions(parsed.text, state.name)) {
        row.classList.add("mention");
        noteMention();
      } else if (parsed.kind === "privateMessage") {
        noteMention();
      }
      break;
    }
    case "action": {
      const text = document.createElement("em");
      text.textContent = `* ${parsed.name} ${parsed.text}`;
      text.style.setProperty("--hue", hueOf(parsed.name));
      row.append(text);
      break;
    }
    default:
      row.textContent = parsed.text;
  }
  pendingRows.push(row);
  // Hidden, the page paints no frames: keep only what the log would keep.
  if (pendingRows.length >= 2 * MAX_LINES) pendingRows.splice(0, pendingRows.length - MAX_LINES);
  if (!rowsFlushScheduled) {
    rowsFlushScheduled = true;
    requestAnimationFrame(flushRows);
  }
}

// Lines reach the page once per frame (`pendingRows`), not one by one: reading the scroll
// position after each append made the browser lay the whole log out again for every line
// (a burst of 3 000 lines took seconds).
function flushRows() {
  rowsFlushScheduled = false;
  if (pendingRows.length === 0) return;
  const atBottom = view.messages.scrollHeight - view.messages.scrollTop - view.messages.clientHeight < 40;
  const rows = pendingRows.length > MAX_LINES ? pendingRows.slice(-MAX_LINES) : pendingRows;
  const fragment = document.createDocumentFragment();
  for (const row of rows) fragment.append(row);
  pendingRows.length = 0;
  view.messages.append(fragment);
  while (view.messages.childElementCount > MAX_LINES) view.messages.firstElementChild.remove();
  if (atBottom) view.messages.scrollTop = view.messages.scrollHeight;
}

function noteMention() {
  if (document.visibilityState === "visible" && document.hasFocus()) return;
  state.unreadMentions += 1;
  document.title = `(${state.unreadMentions}) Chat`;
}

function clearMentions() {
  state.unreadMentions = 0;
  document.title = "Chat";
}
window.addEventListener("focus", clearMentions);
document.addEventListener("visibilitychange", () => {
  if (document.visibilityState === "visible") clearMentions();
});

// MARK: Panes

function renderRooms() {
  const items = state.rooms.map((room) => {
    const item = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button";
    button.className = room.current ? "room current" : "room";
    button.textContent = room.name;
    const detail = document.createElement("span");
    detail.className = "detail";
    detail.textContent = `${room.isPrivate ? "private · " : ""}${room.members === 0 ? "empty" : room.members}`;
    button.append(detail);
    if (room.current) button.setAttribute("aria-current", "true");
    button.addEventListener("click", () => {
      if (!room.current) send(`/join ${room.name}`);
      closePanes();
    });
    item.append(button);
    return item;
  });
  view.rooms.replaceChildren(...items);
}

function renderMembers() {
  const current = state.rooms.find((room) => room.current);
  if (current && state.members.size > 0 && current.members !== state.members.size) {
    current.members = state.members.size;
    renderRooms();
  }
  const rows = [...state.members.values()].sort((a, b) => a.name.toLowerCase().localeCompare(b.name.toLowerCase()));
  const items = rows.map((row) => {
    const item = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button";
    button.className = "person";
    button.style.setProperty("--hue", hueOf(row.name));
    button.textContent = row.name;
    const notes = [row.you ? "you" : null, row.owner ? "owner" : null, row.away ? "away" : null].filter(Boolean);
    if (notes.length) {
      const detail = document.createElement("span");
      detail.className = "detail";
      detail.textContent = notes.join(" · ");
      button.append(detail);
    }
    button.title = `Send ${row.name} a private message`;
    button.addEventListener("click", () => {
      view.input.value = `/msg ${row.name} `;
      view.input.focus();
      closePanes();
    });
    item.append(button);
    return item;
  });
  view.members.replaceChildren(...items);
}

function togglePane(toggle, pane) {
  const open = !document.body.classList.contains(pane);
  closePanes();
  document.body.classList.toggle(pane, open);
  toggle.setAttribute("aria-expanded", String(open));
}

function closePanes() {
  document.body.classList.remove("show-rooms", "show-members");
  $("toggle-rooms").setAttribute("aria-expanded", "false");
  $("toggle-members").setAttribute("aria-expanded", "false");
}

$("toggle-rooms").addEventListener("click", (event) => togglePane(event.currentTarget, "show-rooms"));
$("toggle-members").addEventListener("click", (event) => togglePane(event.currentTarget, "show-members"));
$("refresh-rooms").addEventListener("click", () => askQuietly("/rooms", "rooms"));
$("join-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const field = $("join-field");
  const room = field.value.trim();
  if (room && send(`/join ${room}`)) field.value = "";
  closePanes();
});
for (const button of document.querySelectorAll("[data-command]")) {
  button.addEventListener("click", () => {
    const command = button.dataset.command;
    if (command === "/quit" || command === "/logout") state.leftOnPurpose = true;
    if (command === "/logout") storeToken(null);
    send(command);
    view.input.focus();
  });
}

// MARK: Typing

$("input-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const line = view.input.value;
  if (!line.trim()) return;
  if (!send(line)) {
    addLine({ kind: "error", text: "Not sent: not connected. Reconnecting…" });
    return;
  }
  if (/^\/(quit|logout)\b/i.test(line.trim())) state.leftOnPurpose = true;
  if (/^\/logout\b/i.test(line.trim())) storeToken(null);
  if (state.history[state.history.length - 1] !== line) state.history.push(line);
  if (state.history.length > INPUT_HISTORY) state.history.shift();
  state.historyIndex = state.history.length;
  state.draft = "";
  view.input.value = "";
});

view.input.addEventListener("keydown", (event) => {
  if (event.key === "ArrowUp" || event.key === "ArrowDown") {
    if (state.history.length === 0) return;
    event.preventDefault();
    if (state.historyIndex === state.history.length) state.draft = view.input.value;
    const step = event.key === "ArrowUp" ? -1 : 1;
    state.historyIndex = Math.max(0, Math.min(state.history.length, state.historyIndex + step));
    view.input.value = state.historyIndex === state.history.length ? state.draft : state.history[state.historyIndex];
    view.input.setSelectionRange(view.input.value.length, view.input.value.length);
  } else if (event.key === "Tab" && !event.shiftKey && complete()) {
    event.preventDefault();
  } else if (event.key === "Escape") {
    closePanes();
  }
});

/// Completes the word before the cursor: a command at the start of the line, else a name.
/// Returns whether it did (else Tab moves focus, as it should for keyboard users).
function complete() {
  const input = view.input;
  const end = input.selectionStart ?? input.value.length;
  const before = input.value.slice(0, end);
  const word = /(\S*)$/.exec(before)[1];
  if (!word) return false;
  const isCommand = word.startsWith("/") && before.trimStart() === word;
  const candidates = isCommand
    ? state.commands
    : [...state.members.values()].map((row) => row.name).concat([...state.knownNames]);
  const lower = word.toLowerCase();
  const matches = [...new Set(candidates)].filter((candidate) => candidate.toLowerCase().startsWith(lower));
  if (matches.length === 0) return false;
  let completion = matches[0];
  if (matches.length > 1) completion = commonPrefix(matches, word.length);
  const atStart = before.length === word.length;
  const suffix = matches.length === 1 ? (isCommand ? " " : atStart ? ": " : " ") : "";
  const replaced = before.slice(0, before.length - word.length) + completion + suffix;
  input.value = replaced + input.value.slice(end);
  input.setSelectionRange(replaced.length, replaced.length);
  return true;
}

function commonPrefix(words, atLeast) {
  let prefix = words[0];
  for (const word of words) {
    while (!word.toLowerCase().startsWith(prefix.toLowerCase())) prefix = prefix.slice(0, -1);
  }
  return prefix.length >= atLeast ? prefix : words[0].slice(0, atLeast);
}

connect();
