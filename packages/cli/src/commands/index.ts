import type { Command } from '../cli.ts';
import { build } from './build.ts';
import { doctor } from './doctor.ts';
import { fleet } from './fleet.ts';
import { cache, key, pull, push, sign, verify } from './oci.ts';
import { pkg } from './pkg.ts';
import { validate } from './validate.ts';

/** Every top-level command, in the order `stele --help` lists them. */
export const commands: Command[] = [doctor, validate, pkg, build, fleet, cache, pull, push, key, sign, verify];
