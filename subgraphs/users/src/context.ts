import { contextWithLoaders, type SubgraphContext } from '@shop/common';
import { createLoaders, type Loaders } from './loaders.js';

export type Context = SubgraphContext<Loaders>;

export const createContext = contextWithLoaders(createLoaders);
