import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { Command } from '../cli.ts';

const run = promisify(execFile);

interface Tool {
  name: string;
  /** What Stele uses it for. */
  purpose: string;
  versionArgs: string[];
  /** Debian package that provides it. */
  debian: string;
}

export const HOST_TOOLS: Tool[] = [
  { name: 'qemu-img', purpose: 'qcow2, vmdk and vhd output', versionArgs: ['--version'], debian: 'qemu-utils' },
  { name: 'xorriso', purpose: 'ISO output', versionArgs: ['-version'], debian: 'xorriso' },
  { name: 'mformat', purpose: 'EFI system partitions', versionArgs: ['--version'], debian: 'mtools' },
  { name: 'mkfs.vfat', purpose: 'EFI system partitions', versionArgs: ['--help'], debian: 'dosfstools' },
  { name: 'grub-mkstandalone', purpose: 'EFI boot loaders', versionArgs: ['--version'], debian: 'grub-efi-amd64-bin' },
  {
    name: 'qemu-system-x86_64',
    purpose: 'local fleets and boot checks',
    versionArgs: ['--version'],
    debian: 'qemu-system-x86',
  },
  { name: 'dockerd', purpose: 'package builds (a Docker Engine)', versionArgs: ['--version'], debian: 'docker.io' },
];

interface Finding {
  tool: string;
  purpose: string;
  found: boolean;
  version?: string;
  install?: string;
}

async function probe(tool: Tool): Promise<Finding> {
  try {
    const { stdout, stderr } = await run(tool.name, tool.versionArgs, { timeout: 10_000 });
    const first = `${stdout}${stderr}`.split('\n').find((l) => l.trim()) ?? '';
    return { tool: tool.name, purpose: tool.purpose, found: true, version: first.trim() };
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'ENOENT') {
      return { tool: tool.name, purpose: tool.purpose, found: false, install: `apt-get install ${tool.debian}` };
    }
    // It ran but complained about the flag: it exists.
    return { tool: tool.name, purpose: tool.purpose, found: true };
  }
}

export const doctor: Command = {
  name: 'doctor',
  summary: 'check which host tools Stele can use on this machine',
  usage: '[--json]',
  examples: ['stele doctor', 'stele doctor --json | jq ".[] | select(.found == false)"'],
  options: { json: { type: 'boolean', description: 'print findings as JSON' } },
  async run({ io, values }) {
    const findings = await Promise.all(HOST_TOOLS.map(probe));
    if (values.json) {
      io.stdout.write(`${JSON.stringify(findings, null, 2)}\n`);
    } else {
      const width = Math.max(...findings.map((f) => f.tool.length));
      for (const f of findings) {
        const state = f.found ? `ok   ${f.version ?? ''}` : `MISSING (${f.install})`;
        io.stdout.write(`${f.tool.padEnd(width)}  ${state.trim()}  — ${f.purpose}\n`);
      }
    }
    return 0;
  },
};
