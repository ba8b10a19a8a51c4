import type { gitRepo } from '@stele/test-peers';

export { gitRepo } from '@stele/test-peers';

/**
 * The packages the suites build: `base` (FROM scratch + COPY, with a config section), `app`
 * (FROM base through an `@lkt:pkg:` build arg), `tools` (busybox as /bin/sh and a RUN step).
 */
export function writePackages(repo: ReturnType<typeof gitRepo>) {
  repo.write(
    'pkg/base/build.yml',
    'image: base\narches: [amd64, arm64]\nconfig:\n  capabilities: [CAP_NET_ADMIN]\n  binds: [/etc/resolv.conf:/etc/resolv.conf]\n',
  );
  repo.write('pkg/base/Dockerfile', 'FROM scratch\nCOPY hello /hello\n');
  repo.write('pkg/base/hello', 'hello from base\n');
  repo.write('pkg/base/.dockerignore', 'secret.txt\n');
  repo.write('pkg/base/secret.txt', 'not for the context\n');
  repo.write('pkg/app/build.yml', 'image: app\narches: [amd64, arm64]\nbuildArgs:\n  - BASE=@lkt:pkg:../base\n');
  repo.write('pkg/app/Dockerfile', 'ARG BASE\nFROM $' + '{BASE}\nCOPY app.txt /app.txt\n');
  repo.write('pkg/app/app.txt', 'app\n');
  repo.write('pkg/tools/build.yml', 'image: tools\narches: [amd64, arm64]\n');
  repo.write(
    'pkg/tools/Dockerfile',
    'FROM scratch\nCOPY busybox /bin/sh\nRUN ["/bin/sh", "-c", "echo built > /built"]\n',
  );
  repo.copy('/bin/busybox', 'pkg/tools/busybox');
  repo.commit();
}
