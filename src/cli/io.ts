/** Where a command writes: each call is one block of text; the caller ends it with a newline. */
export interface Io {
  readonly stdout: (s: string) => void;
  readonly stderr: (s: string) => void;
}
