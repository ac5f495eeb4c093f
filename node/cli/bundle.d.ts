// Types of bundle.js (JavaScript: main.js loads it before the compile cache is on).
export declare const BUILD_DIR: string
/** Entry name (`program`, `keystore-prefetch`) → file URL of a fresh bundle, else undefined. */
export declare function freshBundle (buildDir?: string, opts?: { honourEnv?: boolean }): Record<string, string> | undefined
