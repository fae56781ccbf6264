import t from 'tap';
import { addon } from '../src/engine/native.js';
t.test('addon loads', async (t) => { t.type(addon, 'object'); });
