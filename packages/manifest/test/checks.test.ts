import { describe, expect, it } from 'vitest';
import { CAPABILITIES, checkBuildArg, checkExtraSource, checkRlimit, checkTagTemplate } from '../src/index.ts';

describe('build-time syntax checks', () => {
  it('knows the 41 Linux capabilities', () => {
    expect(CAPABILITIES).toHaveLength(41);
    expect(new Set(CAPABILITIES).size).toBe(41);
    expect(CAPABILITIES).toContain('CAP_CHECKPOINT_RESTORE');
  });

  it('tag templates: closed actions over .Hash only', () => {
    expect(checkTagTemplate('{{.Hash}}')).toBeUndefined();
    expect(checkTagTemplate('v{{ .Hash }}-x')).toBeUndefined();
    expect(checkTagTemplate('{{- .Hash -}}')).toBeUndefined();
    expect(checkTagTemplate('file')).toBeUndefined();
    expect(checkTagTemplate('{{.Hash')).toMatch(/unclosed action/);
    expect(checkTagTemplate('{{}}')).toMatch(/empty action/);
    expect(checkTagTemplate('{{.Version}}')).toMatch(/unknown field \.Version/);
    expect(checkTagTemplate('x}}')).toMatch(/'}}' without '{{'/);
  });

  it('rlimits accept names with or without RLIMIT_ and unlimited', () => {
    expect(checkRlimit('nofile,1024,4096')).toBeUndefined();
    expect(checkRlimit(' RLIMIT_NPROC , unlimited , unlimited')).toBeUndefined();
    expect(checkRlimit('nofile,unlimited,5')).toBeUndefined();
    expect(checkRlimit('nofile,1,99999999999999999999')).toMatch(/larger than 2\^64-1/);
  });

  it('build args and extra sources', () => {
    expect(checkBuildArg('A=1')).toBeUndefined();
    expect(checkBuildArg('HASH=@lkt:pkg:../foo')).toBeUndefined();
    expect(checkBuildArg('HASH_%=@lkt:pkgs:../*')).toBeUndefined();
    expect(checkBuildArg('HASH=@lkt:pkgs:../*')).toMatch(/must contain '%'/);
    expect(checkBuildArg('A')).toMatch(/KEY=VALUE/);
    expect(checkBuildArg('A=@lkt:what')).toMatch(/unknown @lkt: value/);
    expect(checkExtraSource('../src:/src')).toBeUndefined();
    expect(checkExtraSource('a:b:c')).toMatch(/exactly one ':'/);
  });
});
