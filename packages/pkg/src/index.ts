export * from './git.ts';
export * from './tag.ts';
