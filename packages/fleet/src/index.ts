export * from './engine.ts';
export * from './plan.ts';
export * from './ports.ts';
export * from './state.ts';
export * from './types.ts';
