// ESM entry: the same API as the CommonJS one.
import palaver from './index.js';

export const { Server, PalaverError } = palaver;
export default palaver;
