// A throwaway git repository for tests that need one (package tags are git tree hashes).
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

/** A throwaway git repository with helpers to write files and commit. */
export function gitRepo(prefix = 'stele-pkg-') {
  const root = mkdtempSync(join(tmpdir(), prefix));
  const sh = (args: string[]) =>
    execFileSync('git', args, {
      cwd: root,
      encoding: 'utf8',
      env: {
        ...process.env,
        GIT_AUTHOR_NAME: 't',
        GIT_AUTHOR_EMAIL: 't@t',
        GIT_COMMITTER_NAME: 't',
        GIT_COMMITTER_EMAIL: 't@t',
      },
    }).trim();
  sh(['init', '-q', '-b', 'main']);
  return {
    root,
    sh,
    write(path: string, text: string) {
      mkdirSync(dirname(join(root, path)), { recursive: true });
      writeFileSync(join(root, path), text);
    },
    copy(from: string, path: string) {
      mkdirSync(dirname(join(root, path)), { recursive: true });
      copyFileSync(from, join(root, path));
    },
    commit() {
      sh(['add', '-A']);
      sh(['commit', '-qm', 'c', '--allow-empty']);
    },
  };
}
