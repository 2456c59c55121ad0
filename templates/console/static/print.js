// The act's Print button: the only script of the console (the CSP allows scripts from here only).
document.getElementById("print").addEventListener("click", function () { window.print(); });
