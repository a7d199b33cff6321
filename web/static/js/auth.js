// Access tokens and roles (docs/protocol.md): the invitation link carries
// the token (?token=...), which join sends. The page reads the token's
// claims only to prepare the pre-join screen (a viewer is not asked for a
// camera); the server checks the token, and its welcome is what counts.

// What each role may do, as the server grants it (room/token.go).
export const ROLE_PERMISSIONS = {
  viewer: { publish: false, subscribe: true, chat: true, moderate: false },
  speaker: { publish: true, subscribe: true, chat: true, moderate: false },
  moderator: { publish: true, subscribe: true, chat: true, moderate: true },
};

// Without an auth secret the server lets everyone do everything but
// moderate.
export const OPEN_PERMISSIONS = { publish: true, subscribe: true, chat: true, moderate: false };

// tokenClaims decodes a JWT's payload without checking it, or returns null.
export function tokenClaims(token) {
  if (!token) return null;
  try {
    const part = token.split('.')[1];
    const b64 = part.replace(/-/g, '+').replace(/_/g, '/').padEnd(Math.ceil(part.length / 4) * 4, '=');
    const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    const claims = JSON.parse(new TextDecoder().decode(bytes));
    return claims && typeof claims === 'object' ? claims : null;
  } catch {
    return null;
  }
}

// expectedPermissions guesses what the server will grant for these claims,
// the way the server derives them: explicit perms, else the role's.
export function expectedPermissions(claims) {
  if (!claims) return { ...OPEN_PERMISSIONS };
  const p = claims.perms;
  if (p && (p.publish || p.subscribe || p.chat || p.moderate)) {
    return { publish: !!p.publish, subscribe: !!p.subscribe, chat: !!p.chat, moderate: !!p.moderate };
  }
  return { ...(ROLE_PERMISSIONS[claims.role || 'speaker'] || ROLE_PERMISSIONS.speaker) };
}

// Join refusals caused by the invitation: another attempt cannot fix them.
export const AUTH_CODES = ['unauthorized', 'invalid_token', 'token_expired', 'wrong_room'];

// Plain-language explanations of the invitation problems and of removal.
export const AUTH_MESSAGES = {
  unauthorized: 'This meeting needs an invitation link. Ask the organizer to send you one.',
  invalid_token: 'This invitation link is not valid. Check that you copied all of it, or ask the organizer for a new one.',
  token_expired: 'Your invitation has expired. Ask the organizer for a new link.',
  wrong_room: 'This invitation is for another meeting. Open the link exactly as you received it.',
  removed: 'A moderator removed you from the meeting.',
};
