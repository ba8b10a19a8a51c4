import type { Command } from '../cli.ts';
import { doctor } from './doctor.ts';
import { validate } from './validate.ts';

/** Every top-level command, in the order `stele --help` lists them. */
export const commands: Command[] = [doctor, validate];
