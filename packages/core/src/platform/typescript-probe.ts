/**
 * A TypeScript module that nothing imports statically: `typescript.ts` imports it to learn
 * whether this thread can already load TypeScript (tsx registered, or a test runner that
 * compiles it), because registering tsx a second time over an active tsx breaks loading.
 * The build copies it beside the chunks, as it is.
 */

/** True once this module has loaded, which only a thread that can load TypeScript does. */
export const typescriptLoads: boolean = true;
