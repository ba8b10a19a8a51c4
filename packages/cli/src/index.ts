export * from './cli.ts';
export { main, root, VERSION } from './main.ts';
