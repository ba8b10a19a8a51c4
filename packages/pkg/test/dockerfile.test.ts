// The one Dockerfile reader: package build order here, Nx dependency edges in the plugin.
import { describe, expect, it } from 'vitest';
import { readDockerfile } from '../src/dockerfile.ts';

const images = (text: string, args?: Record<string, string>) =>
  readDockerfile(text, args).images.map((i) => `${i.line} ${i.kind} ${i.image}`);

describe('readDockerfile', () => {
  it('reads FROM, COPY --from and RUN, substituting build args', () => {
    const info = readDockerfile(
      'ARG BASE=a/b:1\nFROM $' +
        '{BASE} AS build\nRUN make \\\n  all\nFROM scratch\nCOPY --from=build /x /x\nCOPY --from=c/d:2 /y /y\n',
      { BASE: 'org/base:9' },
    );
    expect(info.images.map((i) => i.image)).toEqual(['org/base:9', 'c/d:2']);
    expect(info.hasRun).toBe(true);
    expect(readDockerfile('FROM scratch\nCOPY a /a\n').hasRun).toBe(false);
  });

  it('reads FROMs with ARG defaults, flags, continuations and skips stage names and scratch', () => {
    const text = [
      'ARG ORG=linuxkit',
      'ARG TAG="abc"',
      '# FROM commented/out',
      // biome-ignore lint/suspicious/noTemplateCurlyInString: Dockerfile variables, not a JS template
      'FROM --platform=$BUILDPLATFORM ${ORG}/alpine:${TAG} AS mirror',
      'RUN echo \\',
      '  FROM not/an-instruction',
      'from mirror AS build',
      'FROM scratch',
      'COPY --from=build / /',
      'FROM \\',
      '  linuxkit/runc:1',
    ].join('\n');
    expect(images(text)).toEqual(['4 FROM linuxkit/alpine:abc', '10 FROM linuxkit/runc:1']);
  });

  it('COPY --from and RUN --mount from name images, unless they name an earlier stage or its index', () => {
    const text = [
      "ARG KERNEL='stele/kernel:abc'",
      'FROM alpine AS Build',
      'RUN --mount=type=bind,from=build,target=/b --mount=type=cache,target=/c make',
      'RUN --mount=type=bind,from=stele/tools:1,target=/t ls /t',
      'FROM scratch',
      'COPY --from=build /a /a',
      'COPY --from=0 /b /b',
      'COPY --chown=0:0 --from=$KERNEL /boot /boot',
      'COPY --from=127.0.0.1:5000/stele/init:2 / /',
    ].join('\n');
    expect(images(text)).toEqual([
      '2 FROM alpine',
      '4 RUN --mount from stele/tools:1',
      '8 COPY --from stele/kernel:abc',
      '9 COPY --from 127.0.0.1:5000/stele/init:2',
    ]);
  });

  it('honours the escape directive', () => {
    const text = '# escape=`\nFROM `\n  stele/base:1\nRUN dir c:\\\nCOPY --from=stele/kernel:2 /k /k\n';
    expect(images(text)).toEqual(['2 FROM stele/base:1', '5 COPY --from stele/kernel:2']);
  });
});
