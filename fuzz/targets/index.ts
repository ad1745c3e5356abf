/** The fuzz targets by name; each module also exports a Jazzer.js `fuzz(data)` entry. */
export const TARGETS = ['frame-parser', 'http-head', 'extension-negotiation', 'inflate'] as const;
export type TargetName = (typeof TARGETS)[number];

/** Loads a target module (dynamic, so a worker only loads the one it runs). */
export async function loadTarget(name: TargetName): Promise<import('./common.js').FuzzTarget> {
  switch (name) {
    case 'frame-parser':
      return (await import('./frame-parser.js')).target;
    case 'http-head':
      return (await import('./http-head.js')).target;
    case 'extension-negotiation':
      return (await import('./extension-negotiation.js')).target;
    case 'inflate':
      return (await import('./inflate.js')).target;
  }
}
