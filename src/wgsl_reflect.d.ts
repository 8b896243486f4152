// The ES module build of wgsl_reflect has the same API as its typed main entry.
declare module 'wgsl_reflect/wgsl_reflect.module.js' {
  export * from 'wgsl_reflect';
}
