import { render } from 'preact';
import { App } from './app';
import { captureDevKey } from './pages/sign-in';
import './styles.css';

captureDevKey();
render(<App />, document.getElementById('app')!);
