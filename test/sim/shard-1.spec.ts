// Half the simulation sweep; Vitest runs the two halves on the two cores at once.
import { sweep } from './sweep.ts';

sweep(0, 2);
