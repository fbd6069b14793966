// What the server's lines mean (docs/PROTOCOL.md), read the way the terminal client reads
// them. Nothing here touches the page: chat.js decides what to show.

const NAME = "[A-Za-z0-9_]+";
const ROOM = "#[A-Za-z0-9_-]+";

const patterns = {
  privateEcho: new RegExp(`^\\[PM to (${NAME})\\]: (.*)$`, "s"),
  privateMessage: new RegExp(`^\\[(${NAME})\\]: \\[PM\\] (.*)$`, "s"),
  chat: new RegExp(`^\\[(${NAME})\\]: (.*)$`, "s"),
  action: new RegExp(`^\\* (${NAME}) (.*)$`, "s"),
  welcome: new RegExp(`^Welcome(?: back)?, (${NAME})!$`),
  token: /^\*\*\* Resume token: ([A-Za-z0-9_-]+) \*\*\*$/,
  joined: new RegExp(`^You joined (${ROOM})$`),
  created: new RegExp(`^You created (${ROOM}) `),
  returned: new RegExp(`^You left ${ROOM} and returned to (${ROOM})$`),
  kicked: new RegExp(`^You were kicked from ${ROOM} by ${NAME}$`),
  arrived: new RegExp(`^(${NAME}) joined the room$`),
  departed: new RegExp(`^(${NAME}) left the room$`),
  renamed: new RegExp(`^(${NAME}) is now known as (${NAME})$`),
  listHead: /^(Members of (#[A-Za-z0-9_-]+)|Online Users|Available Rooms) \((\d+)\):$/,
  roomRow: new RegExp(`^  - (${ROOM}) \\[(public|private)\\] \\((\\d+ members|empty)\\)( \\(current\\))?$`),
  personRow: new RegExp(`^  - (${NAME})(.*)$`),
  helpRow: /^ {2}(\/[a-z]+)\b/,
};

/// The token in a `/token` answer, or null.
export function resumeToken(line) {
  const match = patterns.token.exec(line);
  return match ? match[1] : null;
}

export const prompts = {
  invalidToken: "ERROR: Invalid or expired resume token.",
  email: "*** Enter your email address below ***",
  code: "*** Enter OTP code: ***",
  usernamePrefix: "*** Enter username (",
  goodbye: "*** Goodbye! ***",
};

/// One line: { kind, name?, text }. Kinds: system, error, chat, privateMessage,
/// privateEcho, action, plain.
export function classify(line) {
  if (line.length >= 8 && line.startsWith("*** ") && line.endsWith(" ***")) {
    return { kind: "system", text: line.slice(4, -4) };
  }
  if (line.startsWith("ERROR: ")) return { kind: "error", text: line.slice(7) };
  for (const kind of ["privateEcho", "privateMessage", "chat", "action"]) {
    const match = patterns[kind].exec(line);
    if (match) return { kind, name: match[1], text: match[2] };
  }
  return { kind: "plain", text: line };
}

/// The login step a line starts, or null: { step: "email" | "code" | "username" | "chatting" }.
export function loginStep(line) {
  if (line === prompts.email) return { step: "email" };
  if (line === prompts.code) return { step: "code" };
  if (line.startsWith(prompts.usernamePrefix) && line.endsWith(" ***")) {
    return { step: "username", rules: line.slice(4, -4) };
  }
  const system = classify(line);
  if (system.kind === "system") {
    const match = patterns.welcome.exec(system.text);
    if (match) return { step: "chatting", name: match[1] };
  }
  return null;
}

/// What a system line says about where the user is and who is around:
/// { room } (the user is now in it), { arrived }, { departed }, { renamed: [old, new] }, or null.
export function roomEvent(text) {
  let match;
  if ((match = patterns.joined.exec(text))) return { room: match[1] };
  if ((match = patterns.created.exec(text))) return { room: match[1] };
  if ((match = patterns.returned.exec(text))) return { room: match[1] };
  if (patterns.kicked.test(text)) return { room: "#general" };
  if ((match = patterns.arrived.exec(text))) return { arrived: match[1] };
  if ((match = patterns.departed.exec(text))) return { departed: match[1] };
  if ((match = patterns.renamed.exec(text))) return { renamed: [match[1], match[2]] };
  return null;
}

/// Reads the listings the server answers /who, /users, /rooms and /help with: a head line
/// with a count, then that many rows (help: rows until its last line).
export class ListingReader {
  constructor() {
    this.current = null;
  }

  /// Feeds one line. Returns { consumed, done? } where done is a finished listing:
  /// { type: "members" | "users" | "rooms" | "help", room?, rows }.
  read(line) {
    if (this.current) {
      const listing = this.current;
      if (listing.type === "help") {
        const match = patterns.helpRow.exec(line);
        if (match) {
          listing.rows.push(match[1]);
          return { consumed: true };
        }
        this.current = null;
        return { consumed: line.startsWith("Type /help"), done: listing };
      }
      const row = listing.type === "rooms" ? patterns.roomRow.exec(line) : patterns.personRow.exec(line);
      if (row) {
        listing.rows.push(listing.type === "rooms" ? roomRow(row) : personRow(row));
        if (listing.rows.length === listing.count) {
          this.current = null;
          return { consumed: true, done: listing };
        }
        return { consumed: true };
      }
      this.current = null;
    }
    if (line === "Available Commands:") {
      this.current = { type: "help", rows: [] };
      return { consumed: true };
    }
    const head = patterns.listHead.exec(line);
    if (!head) return { consumed: false };
    const type = head[2] ? "members" : head[1] === "Online Users" ? "users" : "rooms";
    const listing = { type, room: head[2], count: Number(head[3]), rows: [] };
    if (listing.count === 0) return { consumed: true, done: listing };
    this.current = listing;
    return { consumed: true };
  }
}

function roomRow(match) {
  return {
    name: match[1],
    isPrivate: match[2] === "private",
    members: match[3] === "empty" ? 0 : parseInt(match[3], 10),
    current: Boolean(match[4]),
  };
}

function personRow(match) {
  const notes = match[2];
  return {
    name: match[1],
    you: notes.includes("(you)"),
    owner: notes.includes("(owner)"),
    operator: notes.includes("(operator)"),
    away: /\(away: /.test(notes),
  };
}

/// A colour for a name that stays the same on every visit: a hue from a hash of it.
export function hueOf(name) {
  let hash = 2166136261;
  for (const character of name.toLowerCase()) {
    hash ^= character.codePointAt(0);
    hash = Math.imul(hash, 16777619);
  }
  return (hash >>> 0) % 360;
}

/// Whether a chat text mentions the name (as a whole word, any case).
export function mentions(text, name) {
  if (!name) return false;
  const lower = text.toLowerCase();
  const needle = name.toLowerCase();
  let index = lower.indexOf(needle);
  while (index !== -1) {
    const before = index === 0 ? "" : lower[index - 1];
    const after = lower[index + needle.length] ?? "";
    if (!/[a-z0-9_]/.test(before) && !/[a-z0-9_]/.test(after)) return true;
    index = lower.indexOf(needle, index + 1);
  }
  return false;
}
