/** Deadlines for the steps of setup: each step races a timer and, when it loses, closes what it was waiting on. */

export class StepTimeout extends Error {}

/** p, or a StepTimeout with `what` once `deadline` (a Date.now() value) passes; onTimeout runs first. */
export async function beforeDeadline<T>(
  p: Promise<T>,
  deadline: number,
  what: string,
  onTimeout: () => void = () => {},
): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          onTimeout();
          reject(new StepTimeout(what));
        }, Math.max(0, deadline - Date.now()));
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Seconds, for messages: "30 s", "1.5 s". */
export const seconds = (ms: number) => `${Number((ms / 1000).toFixed(1))} s`;
