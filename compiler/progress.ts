// Progress lines for long work, shown only when stderr is a terminal.

export interface Progress {
  update(what: string, done: number, total: number, detail?: string): void;
  done(): void;
}

export function terminalProgress(stream: NodeJS.WriteStream = process.stderr): Progress | undefined {
  if (!stream.isTTY) return undefined;
  let last = 0;
  let shown = false;
  return {
    update(what, done, total, detail) {
      const now = Date.now();
      if (now - last < 100 && done < total) return;
      last = now;
      shown = true;
      const pct = total ? Math.floor((100 * done) / total) : 100;
      const line = `${what} ${done}/${total} (${pct}%)${detail ? ` ${detail}` : ""}`;
      stream.write(`\r${line.slice(0, (stream.columns ?? 80) - 1).padEnd((stream.columns ?? 80) - 1)}`);
    },
    done() {
      if (shown) stream.write("\n");
      shown = false;
    },
  };
}
