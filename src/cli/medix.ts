#!/usr/bin/env node
// The `medix` command line: the program (program.ts) parsed, and errors printed as one line.
import { startedWorld } from '../engine/world.js';
import { buildProgram } from './program.js';

buildProgram()
  .parseAsync(process.argv)
  .catch((err: unknown) => {
    const w = startedWorld();
    console.error(
      `medix: ${w && w.size > 1 ? `rank ${w.rank}: ` : ''}${err instanceof Error ? err.message : String(err)}`,
    );
    // The other ranks of a distributed run would wait for this one forever: end them all.
    if (w && w.size > 1) w.abort(1);
    process.exit(1);
  });
