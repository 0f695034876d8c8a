"""The reference CAPF Online CA application: CAPF, RA (EST server over AD CS), phone simulator and the lab."""
