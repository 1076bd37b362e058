/** The rules an account's email and password must meet, shared by createUser and the administrator set-up. */

// Deliberately simple: one @, no spaces, a dot in the domain. Real verification is a confirmation email.
const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;
export const PASSWORD_MIN_LENGTH = 12;
export const PASSWORD_MAX_LENGTH = 200;

/** The email as stored (trimmed, lower case), or undefined when it is not an email address. */
export function normalizeEmail(email: string): string | undefined {
  const normalized = email.trim().toLowerCase();
  return normalized.length <= 254 && EMAIL.test(normalized) ? normalized : undefined;
}

/** What is wrong with a new password, or undefined when it will do. */
export function passwordProblem(password: string): string | undefined {
  if (password.length < PASSWORD_MIN_LENGTH || password.length > PASSWORD_MAX_LENGTH) {
    return `must be ${PASSWORD_MIN_LENGTH} to ${PASSWORD_MAX_LENGTH} characters`;
  }
  return undefined;
}
